// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {Tickets} from "./utils/Tickets.sol";
import {TicketBroker} from "../src/TicketBroker.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {IReserveGate} from "../src/interfaces/IReserveGate.sol";

/// @notice Realistic single calls for the gas table in docs/contracts.md. Each measured
///         function is called in exactly one state here, so min == max in the report:
///           forge test --match-contract GasBench --isolate --gas-report
///         (--isolate runs every call as its own transaction: 21k base, calldata and cold
///         storage included). Recipients and providers already hold ETH, as a live node does.
contract GasBench is Test, Tickets {
    uint256 internal constant SENDER_PK = 0x5E4D;
    TicketBroker internal broker;
    ProviderRegistry internal reg;
    ModelRegistry internal models;
    address internal sender;
    address internal recipient = address(0xBEEF);

    function setUp() public {
        vm.warp(1_700_000_000);
        broker = new TicketBroker(1 days, 1 hours, 8, IReserveGate(address(0)));
        reg = new ProviderRegistry(address(this), address(this), 7 days, 5_000, 1 ether);
        models = new ModelRegistry();
        sender = vm.addr(SENDER_PK);
        vm.deal(sender, 1_000 ether);
        vm.deal(recipient, 1 ether);
    }

    function _tickets(uint256 n, uint256 fv)
        internal
        view
        returns (TicketBroker.Ticket[] memory ts, bytes[] memory sigs, uint256[] memory rands)
    {
        ts = new TicketBroker.Ticket[](n);
        sigs = new bytes[](n);
        rands = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            rands[i] = randFor(i + 1);
            ts[i] = newTicket(sender, recipient, fv, type(uint256).max, i + 1, block.timestamp + 1 days, rands[i]);
            sigs[i] = signTicket(broker, SENDER_PK, ts[i]);
        }
    }

    function test_gas_fundDeposit() public {
        vm.prank(sender);
        broker.fundDeposit{value: 10 ether}();
    }

    function test_gas_redeemWinningTicket_fromDeposit() public {
        vm.prank(sender);
        broker.fundDepositAndReserve{value: 20 ether}(10 ether, 10 ether);
        (TicketBroker.Ticket[] memory ts, bytes[] memory sigs, uint256[] memory rands) = _tickets(1, 0.01 ether);
        vm.prank(recipient);
        broker.redeemWinningTicket(ts[0], sigs[0], rands[0]);
        assertEq(recipient.balance, 1.01 ether, "paid");
    }

    function test_gas_batchRedeem10_fromDeposit() public {
        vm.prank(sender);
        broker.fundDepositAndReserve{value: 20 ether}(10 ether, 10 ether);
        (TicketBroker.Ticket[] memory ts, bytes[] memory sigs, uint256[] memory rands) = _tickets(10, 0.01 ether);
        vm.prank(recipient);
        uint256 n = broker.batchRedeemWinningTickets(ts, sigs, rands);
        assertEq(n, 10, "all ten");
        assertEq(recipient.balance, 1.1 ether, "paid");
    }

    function test_gas_stake() public {
        address provider = address(0x9001);
        vm.deal(provider, 10 ether);
        vm.prank(provider);
        reg.stake{value: 5 ether}();
    }

    function test_gas_register() public {
        vm.prank(address(0xA11CE));
        models.register(
            0x5c3f0e1d2b4a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0,
            bytes32(0),
            "Apache-2.0",
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
        );
    }

    /// Two receipts of one request with different outputs: the whole stake slashed.
    function test_gas_slashEquivocation() public {
        uint256 pk = 0xB0B;
        address provider = vm.addr(pk);
        vm.deal(provider, 2 ether);
        vm.prank(provider);
        reg.stake{value: 1 ether}();
        ProviderRegistry.Receipt memory a;
        a.requestDigest = keccak256("request");
        a.jobId = keccak256("job");
        a.provider = provider;
        a.outputTokensHash = keccak256("output A");
        a.commitRoot = keccak256("root A");
        a.nOut = 16;
        a.finishReason = 2;
        ProviderRegistry.Receipt memory b = _copy(a);
        b.outputTokensHash = keccak256("output B");
        bytes memory sa = _signReceipt(pk, a);
        bytes memory sb = _signReceipt(pk, b);
        vm.prank(recipient);
        reg.slashEquivocation(a, sa, b, sb);
        assertEq(reg.bondedOf(provider), 0, "slashed");
    }

    /// A compute-fault dispute opened with its bond, then confirmed by the arbiter: the
    /// whole stake split, the bond returned.
    function test_gas_dispute() public {
        uint256 pk = 0xB0B;
        address provider = vm.addr(pk);
        vm.deal(provider, 2 ether);
        vm.prank(provider);
        reg.stake{value: 1 ether}();
        ProviderRegistry.Receipt memory r;
        r.requestDigest = keccak256("request");
        r.jobId = keccak256("job");
        r.provider = provider;
        r.outputTokensHash = keccak256("output");
        r.commitRoot = keccak256("root");
        r.nOut = 16;
        r.finishReason = 2;
        bytes memory sig = _signReceipt(pk, r);
        uint256 bond = reg.disputeBond();
        vm.prank(recipient);
        uint256 id = reg.openDispute{value: bond}(r, sig, keccak256("bundle"));
        reg.resolveDispute(id, true);
        assertEq(reg.bondedOf(provider), 0, "slashed");
    }

    function _copy(ProviderRegistry.Receipt memory a) internal pure returns (ProviderRegistry.Receipt memory b) {
        b.requestDigest = a.requestDigest;
        b.jobId = a.jobId;
        b.provider = a.provider;
        b.outputTokensHash = a.outputTokensHash;
        b.commitRoot = a.commitRoot;
        b.nOut = a.nOut;
        b.finishReason = a.finishReason;
    }

    function _signReceipt(uint256 pk, ProviderRegistry.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(pk, reg.receiptDigest(r));
        return abi.encodePacked(rr, s, v);
    }
}

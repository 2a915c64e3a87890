// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";

/// Compute-fault disputes: a challenger's bond over a provider-signed receipt, the
/// arbiter's verdict.
contract DisputesTest is Test {
    ProviderRegistry internal reg;
    uint256 internal constant PROVIDER_KEY = 0xB0B;
    uint256 internal constant OTHER_KEY = 0xE7E;
    address internal provider;
    address internal constant ARBITER = address(0xA4B1);
    address internal challenger = address(0xC4A1);
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;
    bytes32 internal constant EVIDENCE = keccak256("bundle bytes");

    function setUp() public {
        reg = new ProviderRegistry(address(this), ARBITER, 7 days, 5_000, 1 ether);
        provider = vm.addr(PROVIDER_KEY);
        vm.deal(provider, 10 ether);
        vm.deal(challenger, 1 ether);
        vm.prank(provider);
        reg.stake{value: 3 ether}();
    }

    function _receipt() internal view returns (ProviderRegistry.Receipt memory r) {
        r.requestDigest = keccak256("request");
        r.jobId = keccak256("job-1");
        r.provider = provider;
        r.modelId = keccak256("model");
        r.outputTokensHash = keccak256("output");
        r.nOut = 16;
        r.finishReason = 2;
        r.commitRoot = keccak256("root");
        r.nChunks = 2;
    }

    function _sign(uint256 key, ProviderRegistry.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, reg.receiptDigest(r));
        return abi.encodePacked(rr, s, v);
    }

    function _open() internal returns (uint256) {
        ProviderRegistry.Receipt memory r = _receipt();
        bytes memory sig = _sign(PROVIDER_KEY, r);
        uint256 bond = reg.disputeBond();
        vm.prank(challenger);
        return reg.openDispute{value: bond}(r, sig, EVIDENCE);
    }

    function test_a_confirmed_fault_slashes_rewards_and_returns_the_bond() public {
        assertEq(reg.disputeBond(), 0.1 ether, "bond");
        uint256 id = _open();
        assertEq(id, 1, "id");
        (address who, address p, bytes32 job, bytes32 ev, uint256 bond,, uint8 state) = reg.disputes(id);
        assertEq(who, challenger, "challenger");
        assertEq(p, provider, "provider");
        assertEq(job, keccak256("job-1"), "job");
        assertEq(ev, EVIDENCE, "evidence");
        assertEq(bond, 0.1 ether, "bond held");
        assertEq(uint256(state), 1, "open");
        uint256 before = challenger.balance;
        vm.prank(ARBITER);
        reg.resolveDispute(id, true);
        assertEq(reg.bondedOf(provider), 0, "slashed");
        // Half of 3 ETH, and the bond back.
        assertEq(challenger.balance - before, 1.5 ether + 0.1 ether, "challenger paid");
        assertEq(DEAD.balance, 1.5 ether, "burned");
        (,,,,,, state) = reg.disputes(id);
        assertEq(uint256(state), 2, "fault");
        // Decided once.
        vm.prank(ARBITER);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotOpen.selector, id));
        reg.resolveDispute(id, true);
        // The job cannot be disputed again.
        ProviderRegistry.Receipt memory r = _receipt();
        bytes memory sig = _sign(PROVIDER_KEY, r);
        bytes32 jobId = r.jobId;
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.AlreadySlashed.selector, provider, jobId));
        reg.openDispute{value: 0.1 ether}(r, sig, EVIDENCE);
    }

    function test_a_rejected_dispute_burns_the_bond_and_leaves_the_stake() public {
        uint256 id = _open();
        vm.prank(ARBITER);
        reg.resolveDispute(id, false);
        assertEq(reg.bondedOf(provider), 3 ether, "stake kept");
        assertEq(DEAD.balance, 0.1 ether, "bond burned");
        assertEq(challenger.balance, 0.9 ether, "bond lost");
        (,,,,,, uint8 state) = reg.disputes(id);
        assertEq(uint256(state), 3, "rejected");
    }

    /// Attack: a dispute over a receipt the provider never signed, without the bond, or
    /// decided by someone else than the arbiter.
    function test_forged_unbonded_or_self_decided_disputes_are_refused() public {
        ProviderRegistry.Receipt memory r = _receipt();
        bytes memory forged = _sign(OTHER_KEY, r);
        vm.prank(challenger);
        vm.expectRevert(ProviderRegistry.BadSignature.selector);
        reg.openDispute{value: 0.1 ether}(r, forged, EVIDENCE);
        bytes memory sig = _sign(PROVIDER_KEY, r);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.WrongBond.selector, 0.05 ether, 0.1 ether));
        reg.openDispute{value: 0.05 ether}(r, sig, EVIDENCE);
        uint256 id = _open();
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, challenger));
        reg.resolveDispute(id, true);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, address(this)));
        reg.resolveDispute(id, true);
        vm.prank(ARBITER);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotOpen.selector, 9));
        reg.resolveDispute(9, true);
        assertEq(reg.bondedOf(provider), 3 ether, "stake kept");
    }

    /// A provider already slashed (another job) has nothing left: the fault is recorded
    /// and the bond comes back.
    function test_a_fault_against_an_empty_stake_returns_the_bond() public {
        uint256 id = _open();
        vm.prank(ARBITER);
        reg.slash(provider, 3 ether, address(0));
        uint256 before = challenger.balance;
        vm.prank(ARBITER);
        reg.resolveDispute(id, true);
        assertEq(challenger.balance - before, 0.1 ether, "bond back");
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {Tickets} from "./utils/Tickets.sol";
import {TicketBroker} from "../src/TicketBroker.sol";
import {ReentrancyGuard} from "../src/utils/ReentrancyGuard.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";
import {IReserveGate} from "../src/interfaces/IReserveGate.sol";

/// @dev Recipient whose receive() tries to re-enter the broker with a stored call.
contract ReentrantRecipient {
    TicketBroker internal broker;
    bytes internal payload;
    bool public reentered;

    constructor(TicketBroker b) {
        broker = b;
    }

    function setPayload(bytes calldata p) external {
        payload = p;
    }

    receive() external payable {
        (bool ok, bytes memory ret) = address(broker).call(payload);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        reentered = true;
    }
}

/// @dev Recipient that refuses payment.
contract RejectingRecipient {
    receive() external payable {
        revert("no");
    }
}

contract TicketBrokerTest is Test, Tickets {
    event DepositFunded(address indexed sender, uint256 amount, uint256 newDeposit);
    event ReserveFunded(address indexed sender, uint256 amount, uint256 newReserve);
    event Unlock(address indexed sender, uint256 withdrawTime);
    event UnlockCancelled(address indexed sender);
    event Withdrawal(address indexed sender, uint256 deposit, uint256 reserve);
    event WinningTicketRedeemed(
        bytes32 indexed ticketHash,
        address indexed sender,
        address indexed recipient,
        uint256 faceValue,
        uint256 paidFromDeposit,
        uint256 paidFromReserve
    );
    event ReserveClaimed(address indexed sender, address indexed recipient, uint256 indexed round, uint256 amount);
    event WinningTicketSkipped(uint256 indexed index, bytes32 indexed ticketHash, bytes reason);

    uint256 internal constant UNLOCK = 1 days;
    uint256 internal constant ROUND = 1 hours;
    uint256 internal constant SHARES = 4;
    uint256 internal constant ALWAYS = type(uint256).max; // winProb that (practically) always wins

    TicketBroker internal broker;
    uint256 internal senderPk = 0xA11CE;
    uint256 internal otherPk = 0xB0B;
    address internal sender;
    address internal recipient = address(0xBEEF01);
    address internal recipient2 = address(0xBEEF02);
    address internal recipient3 = address(0xBEEF03);
    uint256 internal nonce;

    function setUp() public {
        vm.warp(1_700_000_000);
        broker = new TicketBroker(UNLOCK, ROUND, SHARES, IReserveGate(address(0)));
        sender = vm.addr(senderPk);
        vm.deal(sender, 1_000 ether);
    }

    // ------------------------------------------------------------ helpers

    function _fund(uint256 deposit, uint256 reserve) internal {
        vm.prank(sender);
        broker.fundDepositAndReserve{value: deposit + reserve}(deposit, reserve);
    }

    function _ticket(address to, uint256 fv)
        internal
        returns (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand)
    {
        rand = randFor(++nonce);
        t = newTicket(sender, to, fv, ALWAYS, nonce, block.timestamp + 30 days, rand);
        sig = signTicket(broker, senderPk, t);
    }

    function _deposit() internal view returns (uint256 d) {
        (d,,) = broker.getSenderInfo(sender);
    }

    function _reserve() internal view returns (uint256 r) {
        (, r,) = broker.getSenderInfo(sender);
    }

    function _accounted() internal view returns (uint256) {
        (uint256 d, uint256 r,) = broker.getSenderInfo(sender);
        return d + r;
    }

    // ------------------------------------------------------------ construction & funding

    function test_constructor_rejectsBadConfig() public {
        vm.expectRevert(TicketBroker.InvalidConfig.selector);
        new TicketBroker(UNLOCK, 0, SHARES, IReserveGate(address(0)));
        vm.expectRevert(TicketBroker.InvalidConfig.selector);
        new TicketBroker(UNLOCK, ROUND, 0, IReserveGate(address(0)));
        vm.expectRevert(TicketBroker.InvalidConfig.selector);
        new TicketBroker(uint256(type(uint32).max) + 1, ROUND, SHARES, IReserveGate(address(0)));
    }

    function test_fundDeposit_andReserve() public {
        vm.expectEmit(address(broker));
        emit DepositFunded(sender, 1 ether, 1 ether);
        vm.prank(sender);
        broker.fundDeposit{value: 1 ether}();

        vm.expectEmit(address(broker));
        emit ReserveFunded(sender, 2 ether, 2 ether);
        vm.prank(sender);
        broker.fundReserve{value: 2 ether}();

        vm.prank(sender);
        broker.fundDepositAndReserve{value: 3 ether}(1 ether, 2 ether);
        assertEq(_deposit(), 2 ether, "deposit");
        assertEq(_reserve(), 4 ether, "reserve");
        assertEq(address(broker).balance, 6 ether, "balance");
    }

    function test_fund_rejectsZeroAndMismatch() public {
        vm.startPrank(sender);
        vm.expectRevert(TicketBroker.ZeroValue.selector);
        broker.fundDeposit();
        vm.expectRevert(TicketBroker.ZeroValue.selector);
        broker.fundReserve();
        vm.expectRevert(TicketBroker.ZeroValue.selector);
        broker.fundDepositAndReserve(0, 0);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.ValueMismatch.selector, 3 ether, 2 ether));
        broker.fundDepositAndReserve{value: 2 ether}(1 ether, 2 ether);
        broker.fundDepositAndReserve{value: 2 ether}(0, 2 ether); // one side may be zero
        vm.stopPrank();
        assertEq(_reserve(), 2 ether, "reserve");
        assertEq(_deposit(), 0, "deposit");
    }

    function test_fund_rejectsOverflowingUint128() public {
        uint256 big = uint256(type(uint128).max);
        vm.deal(sender, big + 10);
        vm.startPrank(sender);
        broker.fundDeposit{value: big}();
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.AmountTooLarge.selector, 1));
        broker.fundDeposit{value: 1}();
        vm.stopPrank();
    }

    // ------------------------------------------------------------ ticket encoding

    function test_ticketHash_matchesDocumentedEncoding() public {
        (TicketBroker.Ticket memory t,,) = _ticket(recipient, 1 ether);
        t.auxData = hex"0102030405";
        assertEq(broker.getTicketHash(t), expectedTicketHash(broker, t), "ticket hash encoding");
        // Every field is bound: changing any of them changes the hash.
        bytes32 h = broker.getTicketHash(t);
        TicketBroker.Ticket memory u = t;
        u.auxData = hex"0102030406";
        assertTrue(broker.getTicketHash(u) != h, "auxData bound");
        TicketBroker broker2 = new TicketBroker(UNLOCK, ROUND, SHARES, IReserveGate(address(0)));
        assertTrue(broker2.getTicketHash(t) != h, "broker address bound");
    }

    /// @dev Fixed vectors the Rust side reproduces (docs/contracts.md): chain id 31337, a
    ///      broker at 0x1000…0001, fixed fields, the sender key 0xA11CE. If the encoding,
    ///      the signing scheme or the win rule changes, this breaks.
    function test_ticketHash_knownVector() public {
        address fixedAddr = address(0x1000000000000000000000000000000000000001);
        vm.etch(fixedAddr, address(broker).code);
        TicketBroker b = TicketBroker(fixedAddr);
        TicketBroker.Ticket memory t = TicketBroker.Ticket({
            recipient: address(0x2222222222222222222222222222222222222222),
            sender: address(0x1111111111111111111111111111111111111111),
            faceValue: 1e18,
            winProb: 2 ** 255,
            senderNonce: 7,
            expirationTime: 1_800_000_000,
            recipientRandHash: keccak256(abi.encodePacked(uint256(42))),
            auxData: hex"cafe"
        });
        assertEq(block.chainid, 31337, "chain id");
        assertEq(t.recipientRandHash, 0xbeced09521047d05b8960b7e7bcc1d1292cf3e4b2a6b63f48335cbde5f7545d2, "rand hash");
        bytes32 h = b.getTicketHash(t);
        assertEq(h, 0x12f26fb9774935f3f6d3f1b863cdf156851ce42b3fb8e494bb6abe6a110e9d4c, "ticket hash");
        assertEq(vm.addr(0xA11CE), 0xe05fcC23807536bEe418f142D19fa0d21BB0cfF7, "signer address");
        bytes memory sig = signTicket(b, 0xA11CE, t);
        assertEq(
            sig,
            hex"32ca49895a6e2c07082e58beae3f1a549d2633f41d752a891477545bac3653ec164f6c5f0de29bac65d75bb4c579e5d39863148ea3c20c891922a7fd77254a4e1c",
            "EIP-191 signature (RFC 6979)"
        );
        assertEq(
            keccak256(abi.encodePacked(sig, uint256(42))),
            0x78a61e348c45fd0ea88357f882dfbe126f92f437ec2f4067b5f72fbcdcd8a75a,
            "win hash"
        );
        assertTrue(b.isWinningTicket(sig, 42, 2 ** 255), "wins at winProb 2^255");
        assertFalse(
            b.isWinningTicket(sig, 42, 0x78a61e348c45fd0ea88357f882dfbe126f92f437ec2f4067b5f72fbcdcd8a75a),
            "equal loses"
        );
    }

    // ------------------------------------------------------------ redemption: happy paths

    function test_redeem_paysFromDeposit() public {
        _fund(5 ether, 1 ether);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 2 ether);
        bytes32 h = broker.getTicketHash(t);
        vm.expectEmit(address(broker));
        emit WinningTicketRedeemed(h, sender, recipient, 2 ether, 2 ether, 0);
        vm.prank(recipient);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 2 ether, "recipient paid");
        assertEq(_deposit(), 3 ether, "deposit debited");
        assertEq(_reserve(), 1 ether, "reserve untouched");
        assertTrue(broker.usedTickets(h), "marked used");
    }

    function test_redeem_anyoneMaySubmit_recipientIsPaid() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        address relayer = address(0x5E1A7);
        vm.prank(relayer);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 1 ether, "recipient paid");
        assertEq(relayer.balance, 0, "relayer not paid");
    }

    function test_redeem_depositShort_reservePaysShortfall() public {
        _fund(0.5 ether, 8 ether); // allocation per recipient = 8 / 4 = 2 ether
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 2 ether);
        bytes32 h = broker.getTicketHash(t);
        vm.expectEmit(address(broker));
        emit ReserveClaimed(sender, recipient, block.timestamp / ROUND, 1.5 ether);
        vm.expectEmit(address(broker));
        emit WinningTicketRedeemed(h, sender, recipient, 2 ether, 0.5 ether, 1.5 ether);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 2 ether, "paid in full");
        assertEq(_deposit(), 0, "deposit drained first");
        assertEq(_reserve(), 6.5 ether, "reserve paid the rest");
        assertEq(broker.reserveClaimedBy(sender, block.timestamp / ROUND, recipient), 1.5 ether, "claimed");
    }

    function test_redeem_neitherCanPay_revertsAndPaysNothing() public {
        _fund(0.5 ether, 4 ether); // allocation 1 ether: 0.5 + 1 < 2
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 2 ether);
        uint256 before = address(broker).balance;
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, 2 ether, 0.5 ether, 1 ether));
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 0, "nothing paid (no dust)");
        assertEq(address(broker).balance, before, "balance unchanged");
        assertEq(_deposit(), 0.5 ether, "deposit unchanged");
        assertEq(_reserve(), 4 ether, "reserve unchanged");
        assertFalse(broker.usedTickets(broker.getTicketHash(t)), "ticket not consumed");

        // The ticket stays valid: once the sender tops up, it redeems.
        vm.prank(sender);
        broker.fundDeposit{value: 2 ether}();
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 2 ether, "paid after top-up");
    }

    function test_redeem_emptyEscrow_reverts() public {
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, 1, 0, 0));
        broker.redeemWinningTicket(t, sig, rand);
    }

    // ------------------------------------------------------------ reserve fairness

    function test_reserve_splitEvenlyBetweenRecipients() public {
        _fund(0, 8 ether); // 4 shares of 2 ether
        address[4] memory rs = [recipient, recipient2, recipient3, address(0xBEEF04)];
        for (uint256 i; i < 4; ++i) {
            assertEq(broker.reserveAvailableTo(sender, rs[i]), 2 ether, "allocation");
            (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(rs[i], 1.5 ether);
            broker.redeemWinningTicket(t, sig, rand);
            assertEq(rs[i].balance, 1.5 ether, "paid from reserve");
        }
        // Each has 0.5 ether left of its share; allocations do not shrink as others draw.
        assertEq(_reserve(), 2 ether, "reserve left");
        assertEq(broker.reserveAvailableTo(sender, recipient), 0.5 ether, "own share left");
        (TicketBroker.Ticket memory t2, bytes memory sig2, uint256 rand2) = _ticket(recipient, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, 1 ether, 0, 0.5 ether));
        broker.redeemWinningTicket(t2, sig2, rand2);
        (t2, sig2, rand2) = _ticket(recipient, 0.5 ether);
        broker.redeemWinningTicket(t2, sig2, rand2);
        assertEq(broker.reserveAvailableTo(sender, recipient), 0, "share used up");
    }

    function test_reserve_oneRecipientCannotTakeMoreThanItsShare() public {
        _fund(0, 4 ether); // share 1 ether
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        broker.redeemWinningTicket(t, sig, rand);
        (t, sig, rand) = _ticket(recipient, 1);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, 1, 0, 0));
        broker.redeemWinningTicket(t, sig, rand);
        // Another recipient still gets its full share.
        (t, sig, rand) = _ticket(recipient2, 1 ether);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient2.balance, 1 ether, "second recipient paid");
    }

    function test_reserve_newRoundGivesNewAllocation() public {
        _fund(0, 4 ether);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        broker.redeemWinningTicket(t, sig, rand);
        vm.warp(block.timestamp + ROUND);
        assertEq(broker.reserveAvailableTo(sender, recipient), 0.75 ether, "3 ether / 4");
        (t, sig, rand) = _ticket(recipient, 0.75 ether);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 1.75 ether, "paid across rounds");
    }

    function test_reserve_gate_requiresStakedRecipient() public {
        ProviderRegistry reg = new ProviderRegistry(address(this), address(this), 7 days, 5_000, 1 ether);
        broker = new TicketBroker(UNLOCK, ROUND, SHARES, IReserveGate(address(reg)));
        _fund(0.5 ether, 8 ether);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.RecipientNotEligibleForReserve.selector, recipient));
        broker.redeemWinningTicket(t, sig, rand);
        // Deposit-only payments need no stake.
        (TicketBroker.Ticket memory small, bytes memory sig2, uint256 rand2) = _ticket(recipient, 0.5 ether);
        broker.redeemWinningTicket(small, sig2, rand2);
        // Once staked, the recipient may draw on the reserve.
        vm.deal(recipient, recipient.balance + 1 ether);
        vm.prank(recipient);
        reg.stake{value: 1 ether}();
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 1.5 ether, "0.5 deposit + 1 reserve");
    }

    // ------------------------------------------------------------ redemption: failures

    function test_redeem_expired_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        vm.warp(t.expirationTime); // still valid at the expiration second
        broker.redeemWinningTicket(t, sig, rand);
        (t, sig, rand) = _ticket(recipient, 1 ether);
        vm.warp(t.expirationTime + 1);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.TicketExpired.selector, t.expirationTime));
        broker.redeemWinningTicket(t, sig, rand);
    }

    function test_redeem_wrongSigner_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t,, uint256 rand) = _ticket(recipient, 1 ether);
        bytes memory sig = signTicket(broker, otherPk, t);
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, sig, rand);
    }

    function test_redeem_signatureForOtherFields_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        t.faceValue = 2 ether; // recipient inflates the face value
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, sig, rand);
    }

    function test_redeem_malformedSignatures_revert() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, malleate(sig), rand); // high-s twin
        bytes memory short = new bytes(64);
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, short, rand);
        bytes memory v0 = bytes.concat(sig);
        v0[64] = bytes1(uint8(v0[64]) - 27); // v as 0/1 is not accepted
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, v0, rand);
        bytes memory zeros = new bytes(65);
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, zeros, rand);
        broker.redeemWinningTicket(t, sig, rand); // the canonical one still works
    }

    function test_redeem_zeroSenderWithGarbageSig_reverts() public {
        (TicketBroker.Ticket memory t,, uint256 rand) = _ticket(recipient, 1 ether);
        t.sender = address(0); // ecrecover returns 0 for garbage: must not match
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, new bytes(65), rand);
    }

    function test_redeem_losingTicket_reverts() public {
        _fund(5 ether, 0);
        uint256 rand = randFor(1);
        TicketBroker.Ticket memory t = newTicket(sender, recipient, 1 ether, 0, 1, block.timestamp + 1, rand);
        bytes memory sig = signTicket(broker, senderPk, t);
        vm.expectRevert(TicketBroker.TicketDidNotWin.selector);
        broker.redeemWinningTicket(t, sig, rand);
        // A ticket wins iff hash < winProb: equal loses, one above wins.
        uint256 x = uint256(keccak256(abi.encodePacked(sig, rand)));
        assertFalse(broker.isWinningTicket(sig, rand, x), "equal is a loss");
        assertTrue(broker.isWinningTicket(sig, rand, x + 1), "one above wins");
        assertEq(recipient.balance, 0, "nothing paid");
    }

    function test_redeem_badRecipientRand_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        vm.expectRevert(TicketBroker.InvalidRecipientRand.selector);
        broker.redeemWinningTicket(t, sig, rand + 1);
    }

    function test_redeem_replay_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        broker.redeemWinningTicket(t, sig, rand);
        bytes32 h = broker.getTicketHash(t);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.TicketAlreadyRedeemed.selector, h));
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 1 ether, "paid once");
        assertEq(_deposit(), 4 ether, "debited once");
    }

    function test_redeem_zeroRecipientOrFaceValue_reverts() public {
        _fund(5 ether, 0);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(address(0), 1 ether);
        vm.expectRevert(TicketBroker.InvalidRecipient.selector);
        broker.redeemWinningTicket(t, sig, rand);
        (t, sig, rand) = _ticket(recipient, 0);
        vm.expectRevert(TicketBroker.ZeroFaceValue.selector);
        broker.redeemWinningTicket(t, sig, rand);
    }

    function test_redeem_recipientRejectingPayment_revertsWholeRedemption() public {
        _fund(5 ether, 0);
        RejectingRecipient rej = new RejectingRecipient();
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(address(rej), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.TransferFailed.selector, address(rej), 1 ether));
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(_deposit(), 5 ether, "state rolled back");
        assertFalse(broker.usedTickets(broker.getTicketHash(t)), "not consumed");
    }

    function test_redeem_reentrancyBlocked() public {
        _fund(5 ether, 0);
        ReentrantRecipient evil = new ReentrantRecipient(broker);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(address(evil), 1 ether);
        // On payment, try to redeem the same ticket again.
        evil.setPayload(abi.encodeCall(TicketBroker.redeemWinningTicket, (t, sig, rand)));
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.TransferFailed.selector, address(evil), 1 ether));
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(address(evil).balance, 0, "nothing paid");
        assertEq(_deposit(), 5 ether, "deposit intact");
    }

    function test_withdraw_reentrancyBlocked() public {
        ReentrantRecipient evilSender = new ReentrantRecipient(broker);
        vm.deal(address(evilSender), 2 ether);
        vm.startPrank(address(evilSender));
        broker.fundDeposit{value: 2 ether}();
        broker.unlock();
        vm.stopPrank();
        vm.warp(block.timestamp + UNLOCK);
        evilSender.setPayload(abi.encodeCall(TicketBroker.withdraw, ()));
        vm.prank(address(evilSender));
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.TransferFailed.selector, address(evilSender), 2 ether));
        broker.withdraw();
        assertEq(address(broker).balance, 2 ether, "funds still escrowed");
    }

    // ------------------------------------------------------------ batch

    function test_batch_paysWinnersAndSkipsFailures() public {
        _fund(3 ether, 0);
        TicketBroker.Ticket[] memory ts = new TicketBroker.Ticket[](5);
        bytes[] memory sigs = new bytes[](5);
        uint256[] memory rands = new uint256[](5);
        (ts[0], sigs[0], rands[0]) = _ticket(recipient, 1 ether);
        (ts[1], sigs[1], rands[1]) = _ticket(recipient, 1 ether);
        rands[1] += 1; // bad rand: skipped
        (ts[2], sigs[2], rands[2]) = _ticket(recipient2, 1 ether);
        (ts[3], sigs[3], rands[3]) = (ts[0], sigs[0], rands[0]); // replay inside the batch: skipped
        (ts[4], sigs[4], rands[4]) = _ticket(recipient, 1 ether);

        bytes32 h1 = broker.getTicketHash(ts[1]);
        bytes32 h0 = broker.getTicketHash(ts[0]);
        vm.expectEmit(address(broker));
        emit WinningTicketSkipped(1, h1, abi.encodeWithSelector(TicketBroker.InvalidRecipientRand.selector));
        vm.expectEmit(address(broker));
        emit WinningTicketSkipped(3, h0, abi.encodeWithSelector(TicketBroker.TicketAlreadyRedeemed.selector, h0));
        uint256 n = broker.batchRedeemWinningTickets(ts, sigs, rands);
        assertEq(n, 3, "three redeemed");
        assertEq(recipient.balance, 2 ether, "recipient: tickets 0 and 4");
        assertEq(recipient2.balance, 1 ether, "recipient2: ticket 2");
        assertEq(_deposit(), 0, "deposit used");
        assertFalse(broker.usedTickets(h1), "skipped ticket unused");
    }

    function test_batch_lengthMismatch_reverts() public {
        TicketBroker.Ticket[] memory ts = new TicketBroker.Ticket[](2);
        vm.expectRevert(TicketBroker.LengthMismatch.selector);
        broker.batchRedeemWinningTickets(ts, new bytes[](1), new uint256[](2));
        vm.expectRevert(TicketBroker.LengthMismatch.selector);
        broker.batchRedeemWinningTickets(ts, new bytes[](2), new uint256[](3));
    }

    function test_batch_insufficientFundsSkipsOnlyThatTicket() public {
        _fund(1.5 ether, 0);
        TicketBroker.Ticket[] memory ts = new TicketBroker.Ticket[](2);
        bytes[] memory sigs = new bytes[](2);
        uint256[] memory rands = new uint256[](2);
        (ts[0], sigs[0], rands[0]) = _ticket(recipient, 1 ether);
        (ts[1], sigs[1], rands[1]) = _ticket(recipient, 1 ether);
        assertEq(broker.batchRedeemWinningTickets(ts, sigs, rands), 1, "one redeemed");
        assertEq(recipient.balance, 1 ether, "no partial payment for the second");
        assertEq(_deposit(), 0.5 ether, "0.5 left");
    }

    // ------------------------------------------------------------ unlock / withdraw

    function test_unlock_withdraw_cycle() public {
        _fund(2 ether, 1 ether);
        vm.expectEmit(address(broker));
        emit Unlock(sender, block.timestamp + UNLOCK);
        vm.prank(sender);
        broker.unlock();
        assertTrue(broker.isUnlockInProgress(sender), "unlocking");

        vm.prank(sender);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.AlreadyUnlocking.selector, block.timestamp + UNLOCK));
        broker.unlock();

        vm.warp(block.timestamp + UNLOCK - 1);
        vm.prank(sender);
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.UnlockPeriodNotOver.selector, block.timestamp + 1));
        broker.withdraw();

        vm.warp(block.timestamp + 1);
        uint256 before = sender.balance;
        vm.expectEmit(address(broker));
        emit Withdrawal(sender, 2 ether, 1 ether);
        vm.prank(sender);
        broker.withdraw();
        assertEq(sender.balance - before, 3 ether, "withdrew all");
        assertEq(_accounted(), 0, "escrow empty");
        assertFalse(broker.isUnlockInProgress(sender), "unlock cleared");
        assertEq(address(broker).balance, 0, "broker empty");
    }

    function test_withdraw_withoutUnlock_reverts() public {
        _fund(1 ether, 0);
        vm.prank(sender);
        vm.expectRevert(TicketBroker.NotUnlocking.selector);
        broker.withdraw();
    }

    function test_unlock_nothingEscrowed_reverts() public {
        vm.prank(sender);
        vm.expectRevert(TicketBroker.NothingToWithdraw.selector);
        broker.unlock();
    }

    function test_cancelUnlock() public {
        _fund(1 ether, 0);
        vm.startPrank(sender);
        vm.expectRevert(TicketBroker.NotUnlocking.selector);
        broker.cancelUnlock();
        broker.unlock();
        vm.expectEmit(address(broker));
        emit UnlockCancelled(sender);
        broker.cancelUnlock();
        vm.warp(block.timestamp + UNLOCK);
        vm.expectRevert(TicketBroker.NotUnlocking.selector);
        broker.withdraw();
        vm.stopPrank();
    }

    /// @dev unlock -> redeem -> withdraw: the redemption pays from what is there, the
    ///      withdrawal gets exactly the rest.
    function test_race_unlockRedeemWithdraw() public {
        _fund(2 ether, 4 ether);
        vm.prank(sender);
        broker.unlock();
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 3 ether);
        vm.warp(block.timestamp + UNLOCK - 10);
        broker.redeemWinningTicket(t, sig, rand); // 2 from deposit + 1 from reserve (share 1)
        assertEq(recipient.balance, 3 ether, "redeemed while unlocking");
        vm.warp(block.timestamp + 10);
        uint256 before = sender.balance;
        vm.prank(sender);
        broker.withdraw();
        assertEq(sender.balance - before, 3 ether, "withdrew the rest");
        assertEq(address(broker).balance, 0, "nothing left behind");
    }

    /// @dev unlock -> withdraw -> redeem: the late ticket finds nothing and pays nothing.
    function test_race_withdrawThenRedeem_paysNothing() public {
        _fund(2 ether, 4 ether);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        vm.prank(sender);
        broker.unlock();
        vm.warp(block.timestamp + UNLOCK);
        vm.prank(sender);
        broker.withdraw();
        assertLe(block.timestamp, t.expirationTime, "not expired: funds are the reason");
        vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, 1 ether, 0, 0));
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, 0, "nothing paid");
    }

    /// @dev Redemption and withdrawal in the same block, both orders, never pay out more
    ///      than was escrowed.
    function test_race_sameBlock_neverOverpays() public {
        _fund(1 ether, 0);
        vm.prank(sender);
        broker.unlock();
        vm.warp(block.timestamp + UNLOCK);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, 1 ether);
        broker.redeemWinningTicket(t, sig, rand);
        vm.prank(sender);
        vm.expectRevert(TicketBroker.NothingToWithdraw.selector);
        broker.withdraw();
        assertEq(recipient.balance + address(broker).balance, 1 ether, "conserved");
    }

    // ------------------------------------------------------------ fuzz

    /// @dev Any deposit/reserve/faceValue: either exactly faceValue is paid, split as the
    ///      rules say, or nothing changes.
    function testFuzz_redeem_allOrNothing(uint96 deposit, uint96 reserve, uint96 faceValue) public {
        vm.assume(faceValue > 0);
        vm.deal(sender, uint256(deposit) + reserve);
        if (uint256(deposit) + reserve > 0) _fund(deposit, reserve);
        (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(recipient, faceValue);
        uint256 share = uint256(reserve) / SHARES;
        bool payable_ = faceValue <= deposit || uint256(faceValue) - deposit <= share;
        if (!payable_) {
            vm.expectRevert(abi.encodeWithSelector(TicketBroker.InsufficientFunds.selector, faceValue, deposit, share));
        }
        broker.redeemWinningTicket(t, sig, rand);
        if (payable_) {
            assertEq(recipient.balance, faceValue, "paid in full");
            uint256 fromDeposit = faceValue <= deposit ? faceValue : deposit;
            assertEq(_deposit(), deposit - fromDeposit, "deposit first");
            assertEq(_reserve(), uint256(reserve) - (faceValue - fromDeposit), "reserve for the rest");
        } else {
            assertEq(recipient.balance, 0, "nothing paid");
            assertEq(_deposit(), deposit, "deposit kept");
            assertEq(_reserve(), reserve, "reserve kept");
        }
        assertEq(address(broker).balance, _accounted(), "balance == escrow");
    }

    /// @dev The on-chain outcome equals the documented win rule for any winProb and rand.
    function testFuzz_redeem_winRule(uint256 winProb, uint256 rand) public {
        _fund(10 ether, 0);
        TicketBroker.Ticket memory t = newTicket(sender, recipient, 1 ether, winProb, 1, block.timestamp + 1, rand);
        bytes memory sig = signTicket(broker, senderPk, t);
        bool wins = uint256(keccak256(abi.encodePacked(sig, rand))) < winProb;
        if (!wins) vm.expectRevert(TicketBroker.TicketDidNotWin.selector);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, wins ? 1 ether : 0, "paid iff winning");
    }

    /// @dev Only the sender's key works; any other key is rejected.
    function testFuzz_redeem_onlySenderKey(uint256 pk) public {
        pk = bound(pk, 1, SECP256K1_N - 1);
        _fund(10 ether, 0);
        (TicketBroker.Ticket memory t,, uint256 rand) = _ticket(recipient, 1 ether);
        bytes memory sig = signTicket(broker, pk, t);
        if (vm.addr(pk) != sender) vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, sig, rand);
    }

    /// @dev Canonical signatures are accepted, their high-s twins never.
    function testFuzz_signature_malleabilityRejected(uint256 pk, uint256 faceValue) public {
        pk = bound(pk, 1, SECP256K1_N - 1);
        faceValue = bound(faceValue, 1, 10 ether);
        address s = vm.addr(pk);
        vm.deal(s, faceValue);
        vm.prank(s);
        broker.fundDeposit{value: faceValue}();
        uint256 rand = randFor(faceValue);
        TicketBroker.Ticket memory t = newTicket(s, recipient, faceValue, ALWAYS, 1, block.timestamp, rand);
        bytes memory sig = signTicket(broker, pk, t);
        vm.expectRevert(TicketBroker.InvalidSignature.selector);
        broker.redeemWinningTicket(t, malleate(sig), rand);
        broker.redeemWinningTicket(t, sig, rand);
        assertEq(recipient.balance, faceValue, "canonical accepted");
    }

    /// @dev Tickets expire exactly after expirationTime.
    function testFuzz_redeem_expiry(uint32 lifetime, uint32 delay) public {
        _fund(10 ether, 0);
        uint256 rand = randFor(1);
        TicketBroker.Ticket memory t =
            newTicket(sender, recipient, 1 ether, ALWAYS, 1, block.timestamp + lifetime, rand);
        bytes memory sig = signTicket(broker, senderPk, t);
        vm.warp(block.timestamp + delay);
        if (delay > lifetime) {
            vm.expectRevert(abi.encodeWithSelector(TicketBroker.TicketExpired.selector, t.expirationTime));
        }
        broker.redeemWinningTicket(t, sig, rand);
    }

    /// @dev With k recipients each trying to draw more than their share, no recipient gets
    ///      more than reserve / SHARES in a round and the total never exceeds the reserve.
    function testFuzz_reserve_shareBound(uint96 reserve, uint8 k, uint96 faceValue) public {
        vm.assume(reserve >= SHARES);
        k = uint8(bound(k, 1, 12));
        faceValue = uint96(bound(faceValue, 1, reserve));
        vm.deal(sender, reserve);
        _fund(0, reserve);
        uint256 share = uint256(reserve) / SHARES;
        uint256 paid;
        for (uint256 i; i < k; ++i) {
            address r = address(bytes20(keccak256(abi.encode("reserve recipient", i))));
            for (uint256 j; j < 3; ++j) {
                (TicketBroker.Ticket memory t, bytes memory sig, uint256 rand) = _ticket(r, faceValue);
                try broker.redeemWinningTicket(t, sig, rand) {
                    paid += faceValue;
                } catch {}
            }
            assertLe(r.balance, share, "recipient within its share");
        }
        assertEq(paid, uint256(reserve) - _reserve(), "paid == reserve drawn");
        assertLe(paid, reserve, "never more than the reserve");
    }
}

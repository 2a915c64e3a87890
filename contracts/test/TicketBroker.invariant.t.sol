// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, TestBase, Vm} from "./Test.sol";
import {Tickets} from "./utils/Tickets.sol";
import {TicketBroker} from "../src/TicketBroker.sol";
import {IReserveGate} from "../src/interfaces/IReserveGate.sol";

/// @dev Drives the broker with random funding, unlocks, withdrawals, redemptions, replays
///      and batches from a fixed set of senders and recipients, and keeps ghost books.
contract BrokerHandler is Tickets {
    bytes32 internal constant REDEEMED_TOPIC =
        keccak256("WinningTicketRedeemed(bytes32,address,address,uint256,uint256,uint256)");
    bytes32 internal constant RESERVE_TOPIC = keccak256("ReserveClaimed(address,address,uint256,uint256)");

    TicketBroker public immutable broker;
    uint256 public immutable shares;

    uint256[] internal senderPks;
    address[] public senders;
    address[] public recipients;

    struct Stored {
        TicketBroker.Ticket ticket;
        bytes sig;
        uint256 rand;
    }

    Stored[] internal stored; // every ticket ever issued, for replays and batches
    uint256 internal nonce;

    // ghost books
    uint256 public ghostFunded;
    uint256 public ghostWithdrawn;
    uint256 public ghostPaid; // sum of WinningTicketRedeemed.faceValue
    uint256 public ghostPaidFromReserve; // sum of ReserveClaimed.amount
    uint256 public ghostDoublePays; // a ticket hash paid a second time
    uint256 public ghostOverShare; // a reserve draw beyond the recipient's share
    uint256 public ghostPaidMismatch; // recipient balances moved by other than the events say
    uint256 public ghostRedemptions;
    mapping(bytes32 => uint256) public timesPaid;
    mapping(bytes32 => uint256) internal drawnInRound; // keccak(sender, round, recipient) -> drawn
    // Reserve a sender had when a round began plus its top-ups during the round: an upper
    // bound, kept independently of the contract, on what the round may hand out.
    mapping(bytes32 => uint256) internal roundBase; // keccak(sender, round) -> base
    mapping(bytes32 => bool) internal roundSeen;

    constructor(TicketBroker b, uint256 shares_) {
        broker = b;
        shares = shares_;
        for (uint256 i; i < 3; ++i) {
            uint256 pk = uint256(keccak256(abi.encode("sender", i))) % (SECP256K1_N - 1) + 1;
            senderPks.push(pk);
            senders.push(vm.addr(pk));
            recipients.push(address(bytes20(keccak256(abi.encode("recipient", i)))));
        }
    }

    function senderCount() external view returns (uint256) {
        return senders.length;
    }

    function recipientCount() external view returns (uint256) {
        return recipients.length;
    }

    // ------------------------------------------------------------ actions

    /// @dev Runs first in every action: records each sender's reserve at the start of a
    ///      reserve round the first time the handler sees that round.
    modifier snapshotRounds() {
        uint256 round = broker.currentReserveRound();
        for (uint256 i; i < senders.length; ++i) {
            bytes32 key = keccak256(abi.encode(senders[i], round));
            if (!roundSeen[key]) {
                roundSeen[key] = true;
                (, uint256 r,) = broker.getSenderInfo(senders[i]);
                roundBase[key] = r;
            }
        }
        _;
    }

    function fundDeposit(uint256 who, uint256 amount) external snapshotRounds {
        address s = senders[who % senders.length];
        amount = bound(amount, 1, 20 ether);
        vm.deal(s, amount);
        vm.prank(s);
        broker.fundDeposit{value: amount}();
        ghostFunded += amount;
    }

    function fundReserve(uint256 who, uint256 amount) external snapshotRounds {
        address s = senders[who % senders.length];
        amount = bound(amount, 1, 20 ether);
        vm.deal(s, amount);
        vm.prank(s);
        broker.fundReserve{value: amount}();
        ghostFunded += amount;
        roundBase[keccak256(abi.encode(s, broker.currentReserveRound()))] += amount;
    }

    function unlock(uint256 who) external snapshotRounds {
        address s = senders[who % senders.length];
        vm.prank(s);
        try broker.unlock() {} catch {}
    }

    function cancelUnlock(uint256 who) external snapshotRounds {
        address s = senders[who % senders.length];
        vm.prank(s);
        try broker.cancelUnlock() {} catch {}
    }

    function withdraw(uint256 who) external snapshotRounds {
        address s = senders[who % senders.length];
        uint256 before = s.balance;
        vm.prank(s);
        try broker.withdraw() {
            ghostWithdrawn += s.balance - before;
        } catch {}
    }

    function warp(uint256 secs) external snapshotRounds {
        vm.warp(block.timestamp + bound(secs, 1, 2 days));
    }

    /// @dev Issues a fresh ticket (winning with probability `odds`/4) and redeems it.
    function redeem(uint256 who, uint256 to, uint256 faceValue, uint256 odds, uint256 lifetime)
        external
        snapshotRounds
    {
        Stored memory st = _issue(who, to, faceValue, odds, lifetime);
        _redeem(st);
    }

    /// @dev Re-submits an earlier ticket: pays only if it never paid before.
    function replay(uint256 index) external snapshotRounds {
        if (stored.length == 0) return;
        _redeem(stored[index % stored.length]);
    }

    /// @dev A batch of up to 6 tickets, new and old (so duplicates and replays occur).
    function batch(uint256 seed, uint256 count) external snapshotRounds {
        count = bound(count, 1, 6);
        TicketBroker.Ticket[] memory ts = new TicketBroker.Ticket[](count);
        bytes[] memory sigs = new bytes[](count);
        uint256[] memory rands = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            Stored memory st;
            if (r % 3 == 0 && stored.length != 0) st = stored[r % stored.length];
            else st = _issue(r, r >> 8, r >> 16, r >> 24, r >> 32);
            (ts[i], sigs[i], rands[i]) = (st.ticket, st.sig, st.rand);
        }
        uint256[] memory before = _recipientBalances();
        vm.recordLogs();
        try broker.batchRedeemWinningTickets(ts, sigs, rands) {
            _account(before);
        } catch {
            vm.getRecordedLogs(); // drop
        }
    }

    // ------------------------------------------------------------ internals

    function _issue(uint256 who, uint256 to, uint256 faceValue, uint256 odds, uint256 lifetime)
        internal
        returns (Stored memory st)
    {
        uint256 i = who % senders.length;
        address recipient = recipients[to % recipients.length];
        faceValue = bound(faceValue, 1, 10 ether);
        // winProb: 0 (never), 1/4, 1/2, max (always)
        uint256[4] memory probs = [uint256(0), type(uint256).max / 4, type(uint256).max / 2, type(uint256).max];
        uint256 winProb = probs[odds % 4];
        uint256 rand = randFor(++nonce);
        TicketBroker.Ticket memory t = newTicket(
            senders[i], recipient, faceValue, winProb, nonce, block.timestamp + bound(lifetime, 0, 3 days), rand
        );
        st = Stored(t, signTicket(broker, senderPks[i], t), rand);
        stored.push(st);
    }

    function _redeem(Stored memory st) internal {
        uint256[] memory before = _recipientBalances();
        vm.recordLogs();
        try broker.redeemWinningTicket(st.ticket, st.sig, st.rand) {
            _account(before);
        } catch {
            vm.getRecordedLogs(); // a failed redemption must not have paid anything
            uint256[] memory afterB = _recipientBalances();
            for (uint256 j; j < afterB.length; ++j) {
                if (afterB[j] != before[j]) ++ghostPaidMismatch;
            }
        }
    }

    /// @dev Books a successful call from its events and checks the recipients' balances
    ///      moved by exactly what the events say.
    function _account(uint256[] memory before) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256[] memory expected = new uint256[](recipients.length);
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(broker)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == REDEEMED_TOPIC) {
                bytes32 h = logs[i].topics[1];
                address recipient = address(uint160(uint256(logs[i].topics[3])));
                (uint256 fv,,) = abi.decode(logs[i].data, (uint256, uint256, uint256));
                if (++timesPaid[h] > 1) ++ghostDoublePays;
                ghostPaid += fv;
                ++ghostRedemptions;
                expected[_recipientIndex(recipient)] += fv;
            } else if (topic == RESERVE_TOPIC) {
                address sender = address(uint160(uint256(logs[i].topics[1])));
                address recipient = address(uint160(uint256(logs[i].topics[2])));
                uint256 round = uint256(logs[i].topics[3]);
                uint256 amount = abi.decode(logs[i].data, (uint256));
                ghostPaidFromReserve += amount;
                bytes32 key = keccak256(abi.encode(sender, round, recipient));
                drawnInRound[key] += amount;
                // drawn <= floor(base / shares)  <=>  drawn * shares <= base
                if (drawnInRound[key] * shares > roundBase[keccak256(abi.encode(sender, round))]) {
                    ++ghostOverShare;
                }
            }
        }
        uint256[] memory afterB = _recipientBalances();
        for (uint256 j; j < afterB.length; ++j) {
            if (afterB[j] - before[j] != expected[j]) ++ghostPaidMismatch;
        }
    }

    function _recipientBalances() internal view returns (uint256[] memory b) {
        b = new uint256[](recipients.length);
        for (uint256 i; i < b.length; ++i) {
            b[i] = recipients[i].balance;
        }
    }

    function _recipientIndex(address r) internal view returns (uint256) {
        for (uint256 i; i < recipients.length; ++i) {
            if (recipients[i] == r) return i;
        }
        revert("unknown recipient");
    }
}

contract TicketBrokerInvariantTest is Test {
    TicketBroker internal broker;
    BrokerHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        broker = new TicketBroker(1 days, 6 hours, 2, IReserveGate(address(0)));
        handler = new BrokerHandler(broker, 2);
        targetContract(address(handler));
        bytes4[] memory sel = new bytes4[](9);
        sel[0] = BrokerHandler.fundDeposit.selector;
        sel[1] = BrokerHandler.fundReserve.selector;
        sel[2] = BrokerHandler.unlock.selector;
        sel[3] = BrokerHandler.cancelUnlock.selector;
        sel[4] = BrokerHandler.withdraw.selector;
        sel[5] = BrokerHandler.warp.selector;
        sel[6] = BrokerHandler.redeem.selector;
        sel[7] = BrokerHandler.replay.selector;
        sel[8] = BrokerHandler.batch.selector;
        targetSelector(address(handler), sel);
    }

    /// @dev The broker holds exactly the sum of all deposits and reserves.
    function invariant_balanceEqualsEscrow() public view {
        uint256 sum;
        for (uint256 i; i < handler.senderCount(); ++i) {
            (uint256 d, uint256 r,) = broker.getSenderInfo(handler.senders(i));
            sum += d + r;
        }
        assertEq(address(broker).balance, sum, "balance == sum(deposit + reserve)");
    }

    /// @dev Money in = money out + money held.
    function invariant_conservation() public view {
        assertEq(
            handler.ghostFunded(),
            handler.ghostWithdrawn() + handler.ghostPaid() + address(broker).balance,
            "funded == withdrawn + paid + held"
        );
    }

    /// @dev No ticket hash is ever paid twice, and payments match the events exactly.
    function invariant_noTicketPaysTwice() public view {
        assertEq(handler.ghostDoublePays(), 0, "a ticket paid twice");
        assertEq(handler.ghostPaidMismatch(), 0, "balances moved other than the events say");
    }

    /// @dev Recipients received exactly the face values of redeemed tickets.
    function invariant_recipientsGotWhatWasRedeemed() public view {
        uint256 sum;
        for (uint256 i; i < handler.recipientCount(); ++i) {
            sum += handler.recipients(i).balance;
        }
        assertEq(sum, handler.ghostPaid(), "recipients' balances == redeemed face values");
        assertLe(handler.ghostPaidFromReserve(), handler.ghostPaid(), "reserve part <= total");
    }

    /// @dev No recipient drew more than its share of a sender's reserve in a round.
    function invariant_reserveShareRespected() public view {
        assertEq(handler.ghostOverShare(), 0, "reserve draw over share");
    }
}

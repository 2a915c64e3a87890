// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReentrancyGuard} from "./utils/ReentrancyGuard.sol";
import {IReserveGate} from "./interfaces/IReserveGate.sol";

/// @title TicketBroker
/// @notice Probabilistic micropayments between Flurry nodes, after Livepeer's design.
///
/// A sender (the node buying work) escrows native currency as a `deposit` and a `reserve`.
/// For every unit of work it hands the recipient a signed lottery ticket of value
/// `faceValue` that wins with probability `winProb / 2^256`; the expected value
/// `faceValue * winProb / 2^256` is the real price. Only winning tickets ever touch the
/// chain.
///
/// Ticket hash (every field one 32-byte ABI word, 320 bytes in all):
/// ```
/// ticketHash = keccak256(abi.encode(
///     block.chainid,            // uint256
///     address(this),            // address of this broker
///     ticket.recipient,         // address
///     ticket.sender,            // address
///     ticket.faceValue,         // uint256, wei
///     ticket.winProb,           // uint256
///     ticket.senderNonce,       // uint256
///     ticket.expirationTime,    // uint256, unix seconds
///     ticket.recipientRandHash, // bytes32 = keccak256(abi.encodePacked(uint256 recipientRand))
///     keccak256(ticket.auxData) // bytes32
/// ))
/// ```
/// Signature: EIP-191 personal_sign of the 32-byte hash, i.e. secp256k1 over
/// `keccak256("\x19Ethereum Signed Message:\n32" ++ ticketHash)`, encoded as 65 bytes
/// `r ++ s ++ v` with `v` in {27, 28} and low `s` (s <= n/2). Any other encoding is
/// rejected, so a signature has exactly one valid byte string and the recipient cannot
/// re-roll the lottery by malleating it.
///
/// Win rule: `uint256(keccak256(abi.encodePacked(sig, recipientRand))) < winProb`
/// (65 signature bytes followed by the 32-byte big-endian `recipientRand`). The recipient
/// commits to `recipientRand` via `recipientRandHash` before the sender signs, and the
/// sender's signature is fixed before `recipientRand` is revealed, so neither side alone
/// controls the outcome.
///
/// Payment rules: see `redeemWinningTicket`. Anyone may submit a ticket (a relayer, a
/// watchtower); the money always goes to `ticket.recipient`, and only the recipient
/// knows `recipientRand`.
contract TicketBroker is ReentrancyGuard {
    // ---------------------------------------------------------------- types

    /// @notice A probabilistic payment ticket. See the contract NatSpec for its hash.
    struct Ticket {
        address recipient; // who is paid when the ticket wins
        address sender; // whose deposit/reserve pays; must have signed the ticket
        uint256 faceValue; // wei paid when the ticket wins
        uint256 winProb; // wins when uint256(keccak256(sig ++ recipientRand)) < winProb
        uint256 senderNonce; // makes tickets with otherwise equal fields distinct
        uint256 expirationTime; // unix seconds; redeemable while block.timestamp <= this
        bytes32 recipientRandHash; // keccak256(abi.encodePacked(recipientRand))
        bytes auxData; // opaque to the broker (e.g. a session id); bound by the signature
    }

    /// @notice Escrow of one sender. `withdrawTime` is 0 when the sender is not unlocking.
    struct Sender {
        uint128 deposit;
        uint128 reserve;
        uint64 withdrawTime;
    }

    /// @dev Reserve draws of one sender in one reserve round.
    struct ReserveRound {
        uint256 claimed; // total drawn from the reserve in this round
        mapping(address recipient => uint256) claimedBy; // drawn per recipient
    }

    // ---------------------------------------------------------------- errors

    error ZeroValue();
    error AmountTooLarge(uint256 amount);
    error ValueMismatch(uint256 expected, uint256 sent);
    error InvalidConfig();
    error LengthMismatch();
    error AlreadyUnlocking(uint256 withdrawTime);
    error NotUnlocking();
    error UnlockPeriodNotOver(uint256 withdrawTime);
    error NothingToWithdraw();
    error TransferFailed(address to, uint256 amount);
    // Redemption failures (also the `reason` of `WinningTicketSkipped` in a batch).
    error InvalidRecipient();
    error ZeroFaceValue();
    error TicketExpired(uint256 expirationTime);
    error InvalidRecipientRand();
    error TicketAlreadyRedeemed(bytes32 ticketHash);
    error InvalidSignature();
    error TicketDidNotWin();
    error RecipientNotEligibleForReserve(address recipient);
    /// @notice Neither the deposit nor deposit + this recipient's remaining reserve
    ///         allocation covers the face value. Nothing is paid; the ticket stays
    ///         redeemable (until it expires) should the sender refund or a new round begin.
    error InsufficientFunds(uint256 faceValue, uint256 deposit, uint256 reserveAvailable);

    // ---------------------------------------------------------------- events

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
    /// @notice A ticket in a batch was not redeemed. `reason` is the ABI-encoded custom
    ///         error `redeemWinningTicket` would have reverted with.
    event WinningTicketSkipped(uint256 indexed index, bytes32 indexed ticketHash, bytes reason);

    // ---------------------------------------------------------------- config & state

    /// @dev Upper bound on `s` for a canonical (low-s) secp256k1 signature: n / 2.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice Seconds between `unlock()` and the earliest `withdraw()`.
    uint256 public immutable unlockPeriod;
    /// @notice Length in seconds of a reserve round; round = block.timestamp / this.
    uint256 public immutable reserveRoundLength;
    /// @notice Number of equal shares a reserve is split into per round: one recipient may
    ///         draw at most (reserve + already drawn this round) / reserveRecipients per
    ///         round, i.e. its share of the reserve as it stood when the round began (plus
    ///         any top-up made during the round).
    uint256 public immutable reserveRecipients;
    /// @notice Who may draw on reserves; address(0) = anyone.
    IReserveGate public immutable reserveGate;

    mapping(address sender => Sender) internal _senders;
    /// @notice Ticket hashes that have been paid. A ticket pays at most once.
    mapping(bytes32 ticketHash => bool) public usedTickets;
    mapping(address sender => mapping(uint256 round => ReserveRound)) internal _reserveRounds;

    /// @param unlockPeriod_ seconds a sender waits between `unlock()` and `withdraw()`
    /// @param reserveRoundLength_ seconds per reserve round (> 0)
    /// @param reserveRecipients_ shares per round a reserve is split into (> 0)
    /// @param reserveGate_ eligibility check for reserve draws, or address(0) for none
    constructor(
        uint256 unlockPeriod_,
        uint256 reserveRoundLength_,
        uint256 reserveRecipients_,
        IReserveGate reserveGate_
    ) {
        if (reserveRoundLength_ == 0 || reserveRecipients_ == 0 || unlockPeriod_ > type(uint32).max) {
            revert InvalidConfig();
        }
        unlockPeriod = unlockPeriod_;
        reserveRoundLength = reserveRoundLength_;
        reserveRecipients = reserveRecipients_;
        reserveGate = reserveGate_;
    }

    // ---------------------------------------------------------------- funding

    /// @notice Adds msg.value to the caller's deposit. Does not cancel an unlock.
    function fundDeposit() external payable {
        _fundDeposit(msg.value);
    }

    /// @notice Adds msg.value to the caller's reserve. Does not cancel an unlock.
    function fundReserve() external payable {
        _fundReserve(msg.value);
    }

    /// @notice Splits msg.value: `depositAmount` to the deposit, `reserveAmount` to the
    ///         reserve. The two must add up to msg.value (> 0); either may be zero.
    function fundDepositAndReserve(uint256 depositAmount, uint256 reserveAmount) external payable {
        if (msg.value == 0) revert ZeroValue();
        if (depositAmount + reserveAmount != msg.value) revert ValueMismatch(depositAmount + reserveAmount, msg.value);
        if (depositAmount != 0) _fundDeposit(depositAmount);
        if (reserveAmount != 0) _fundReserve(reserveAmount);
    }

    function _fundDeposit(uint256 amount) internal {
        if (amount == 0) revert ZeroValue();
        Sender storage s = _senders[msg.sender];
        uint256 d = uint256(s.deposit) + amount;
        if (d > type(uint128).max) revert AmountTooLarge(amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- d <= type(uint128).max, checked above
        s.deposit = uint128(d);
        emit DepositFunded(msg.sender, amount, d);
    }

    function _fundReserve(uint256 amount) internal {
        if (amount == 0) revert ZeroValue();
        Sender storage s = _senders[msg.sender];
        uint256 r = uint256(s.reserve) + amount;
        if (r > type(uint128).max) revert AmountTooLarge(amount);
        // forge-lint: disable-next-line(unsafe-typecast) -- r <= type(uint128).max, checked above
        s.reserve = uint128(r);
        emit ReserveFunded(msg.sender, amount, r);
    }

    // ---------------------------------------------------------------- unlock / withdraw

    /// @notice Starts the unlock countdown; `withdraw()` is possible `unlockPeriod`
    ///         seconds later. Tickets keep redeeming meanwhile, so recipients should stop
    ///         accepting new tickets from a sender that is unlocking and redeem what they
    ///         hold before `withdrawTime`.
    function unlock() external {
        Sender storage s = _senders[msg.sender];
        if (s.withdrawTime != 0) revert AlreadyUnlocking(s.withdrawTime);
        if (s.deposit == 0 && s.reserve == 0) revert NothingToWithdraw();
        uint256 t = block.timestamp + unlockPeriod;
        // forge-lint: disable-next-line(unsafe-typecast) -- unlockPeriod <= 2^32 (constructor), timestamp + 2^32 fits in 64 bits
        s.withdrawTime = uint64(t);
        emit Unlock(msg.sender, t);
    }

    /// @notice Stops an unlock in progress.
    function cancelUnlock() external {
        Sender storage s = _senders[msg.sender];
        if (s.withdrawTime == 0) revert NotUnlocking();
        s.withdrawTime = 0;
        emit UnlockCancelled(msg.sender);
    }

    /// @notice After the unlock period, pays the caller its whole remaining deposit and
    ///         reserve. Whatever was redeemed before this call is already gone; a ticket
    ///         redeemed after it finds nothing and reverts without paying.
    function withdraw() external nonReentrant {
        Sender storage s = _senders[msg.sender];
        uint256 wt = s.withdrawTime;
        if (wt == 0) revert NotUnlocking();
        if (block.timestamp < wt) revert UnlockPeriodNotOver(wt);
        uint256 d = s.deposit;
        uint256 r = s.reserve;
        if (d + r == 0) revert NothingToWithdraw();
        s.deposit = 0;
        s.reserve = 0;
        s.withdrawTime = 0;
        emit Withdrawal(msg.sender, d, r);
        _send(msg.sender, d + r);
    }

    // ---------------------------------------------------------------- redemption

    /// @notice Redeems one winning ticket and pays `ticket.faceValue` to `ticket.recipient`.
    /// @dev Anyone may call; the payee is always `ticket.recipient`. Checks, in order:
    ///      recipient != 0, faceValue != 0, block.timestamp <= expirationTime,
    ///      keccak256(recipientRand) == recipientRandHash, not redeemed before, canonical
    ///      signature by `sender`, ticket wins. Payment, all-or-nothing:
    ///      1. deposit >= faceValue: the deposit pays it all;
    ///      2. otherwise the whole deposit pays first and the reserve pays the shortfall,
    ///         up to what this recipient may still draw from this sender's reserve in the
    ///         current round: (reserve + drawn this round) / reserveRecipients - drawn by
    ///         this recipient this round (and only if the reserve gate admits it);
    ///      3. if that is still short, revert `InsufficientFunds`: nothing is paid and
    ///         the ticket is not marked used.
    /// @param ticket the ticket
    /// @param sig the sender's 65-byte signature over the ticket hash (EIP-191)
    /// @param recipientRand the preimage of `ticket.recipientRandHash`
    function redeemWinningTicket(Ticket calldata ticket, bytes calldata sig, uint256 recipientRand)
        external
        nonReentrant
    {
        (bytes memory err,, uint256 amount) = _redeem(ticket, sig, recipientRand);
        if (err.length != 0) {
            assembly ("memory-safe") {
                revert(add(err, 32), mload(err))
            }
        }
        _send(ticket.recipient, amount);
    }

    /// @notice Redeems several tickets. A ticket that fails any check is skipped with a
    ///         `WinningTicketSkipped` event carrying the error; the others still pay.
    ///         Payments to consecutive tickets with the same recipient are sent as one
    ///         transfer after all state changes. A failing transfer reverts the batch.
    /// @return redeemed how many tickets were paid
    function batchRedeemWinningTickets(
        Ticket[] calldata tickets,
        bytes[] calldata sigs,
        uint256[] calldata recipientRands
    ) external nonReentrant returns (uint256 redeemed) {
        uint256 n = tickets.length;
        if (sigs.length != n || recipientRands.length != n) revert LengthMismatch();
        address[] memory payees = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 k; // number of payee runs
        for (uint256 i; i < n; ++i) {
            (bytes memory err, bytes32 h, uint256 amount) = _redeem(tickets[i], sigs[i], recipientRands[i]);
            if (err.length != 0) {
                emit WinningTicketSkipped(i, h, err);
                continue;
            }
            ++redeemed;
            address to = tickets[i].recipient;
            if (k == 0 || payees[k - 1] != to) {
                payees[k] = to;
                ++k;
            }
            amounts[k - 1] += amount;
        }
        for (uint256 j; j < k; ++j) {
            _send(payees[j], amounts[j]);
        }
    }

    /// @dev All checks and effects of one redemption; no transfer. On failure returns the
    ///      ABI-encoded custom error and changes nothing.
    function _redeem(Ticket calldata t, bytes calldata sig, uint256 recipientRand)
        internal
        returns (bytes memory err, bytes32 h, uint256 amount)
    {
        h = getTicketHash(t);
        if (t.recipient == address(0)) return (abi.encodeWithSelector(InvalidRecipient.selector), h, 0);
        uint256 fv = t.faceValue;
        if (fv == 0) return (abi.encodeWithSelector(ZeroFaceValue.selector), h, 0);
        if (block.timestamp > t.expirationTime) {
            return (abi.encodeWithSelector(TicketExpired.selector, t.expirationTime), h, 0);
        }
        if (keccak256(abi.encodePacked(recipientRand)) != t.recipientRandHash) {
            return (abi.encodeWithSelector(InvalidRecipientRand.selector), h, 0);
        }
        if (usedTickets[h]) return (abi.encodeWithSelector(TicketAlreadyRedeemed.selector, h), h, 0);
        address signer = _recover(_ethSignedHash(h), sig);
        if (signer == address(0) || signer != t.sender) {
            return (abi.encodeWithSelector(InvalidSignature.selector), h, 0);
        }
        if (!isWinningTicket(sig, recipientRand, t.winProb)) {
            return (abi.encodeWithSelector(TicketDidNotWin.selector), h, 0);
        }

        (bytes memory payErr, uint256 fromReserve) = _debit(t.sender, t.recipient, fv);
        if (payErr.length != 0) return (payErr, h, 0);
        usedTickets[h] = true;
        emit WinningTicketRedeemed(h, t.sender, t.recipient, fv, fv - fromReserve, fromReserve);
        return ("", h, fv);
    }

    /// @dev Takes `fv` from `sender`'s escrow for `recipient`: the deposit first, then the
    ///      reserve within the recipient's allocation. All or nothing.
    function _debit(address sender, address recipient, uint256 fv)
        internal
        returns (bytes memory err, uint256 fromReserve)
    {
        Sender storage s = _senders[sender];
        uint256 deposit = s.deposit;
        if (deposit >= fv) {
            // forge-lint: disable-next-line(unsafe-typecast) -- deposit - fv < deposit, which came from a uint128
            s.deposit = uint128(deposit - fv);
            return ("", 0);
        }
        if (address(reserveGate) != address(0) && !reserveGate.isEligibleRecipient(recipient)) {
            return (abi.encodeWithSelector(RecipientNotEligibleForReserve.selector, recipient), 0);
        }
        fromReserve = fv - deposit;
        uint256 round = block.timestamp / reserveRoundLength;
        ReserveRound storage rr = _reserveRounds[sender][round];
        uint256 reserve = s.reserve;
        uint256 available = _reserveAvailable(reserve, rr, recipient);
        if (fromReserve > available) {
            return (abi.encodeWithSelector(InsufficientFunds.selector, fv, deposit, available), 0);
        }
        s.deposit = 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- reserve - fromReserve < reserve, which came from a uint128
        s.reserve = uint128(reserve - fromReserve);
        rr.claimed += fromReserve;
        rr.claimedBy[recipient] += fromReserve;
        emit ReserveClaimed(sender, recipient, round, fromReserve);
    }

    function _reserveAvailable(uint256 reserve, ReserveRound storage rr, address recipient)
        internal
        view
        returns (uint256)
    {
        // The allocation is fixed for the round: draws already made are added back.
        uint256 allocation = (reserve + rr.claimed) / reserveRecipients;
        uint256 used = rr.claimedBy[recipient];
        if (used >= allocation) return 0;
        uint256 left = allocation - used;
        return left < reserve ? left : reserve;
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }

    // ---------------------------------------------------------------- views & helpers

    /// @notice The ticket hash the sender signs (see the contract NatSpec).
    function getTicketHash(Ticket calldata t) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                block.chainid,
                address(this),
                t.recipient,
                t.sender,
                t.faceValue,
                t.winProb,
                t.senderNonce,
                t.expirationTime,
                t.recipientRandHash,
                keccak256(t.auxData)
            )
        );
    }

    /// @notice True when a ticket with signature `sig` and revealed `recipientRand` wins.
    function isWinningTicket(bytes calldata sig, uint256 recipientRand, uint256 winProb) public pure returns (bool) {
        return uint256(keccak256(abi.encodePacked(sig, recipientRand))) < winProb;
    }

    /// @notice Escrow of `sender`: deposit, reserve and withdrawTime (0 = not unlocking).
    function getSenderInfo(address sender)
        external
        view
        returns (uint256 deposit, uint256 reserve, uint256 withdrawTime)
    {
        Sender storage s = _senders[sender];
        return (s.deposit, s.reserve, s.withdrawTime);
    }

    /// @notice True when `sender` is unlocking (withdrawTime set), whether or not the
    ///         period is over.
    function isUnlockInProgress(address sender) external view returns (bool) {
        return _senders[sender].withdrawTime != 0;
    }

    /// @notice How much `recipient` could draw from `sender`'s reserve right now (ignores
    ///         the reserve gate).
    function reserveAvailableTo(address sender, address recipient) external view returns (uint256) {
        ReserveRound storage rr = _reserveRounds[sender][currentReserveRound()];
        return _reserveAvailable(_senders[sender].reserve, rr, recipient);
    }

    /// @notice What `recipient` drew from `sender`'s reserve in `round`.
    function reserveClaimedBy(address sender, uint256 round, address recipient) external view returns (uint256) {
        return _reserveRounds[sender][round].claimedBy[recipient];
    }

    /// @notice The current reserve round: block.timestamp / reserveRoundLength.
    function currentReserveRound() public view returns (uint256) {
        return block.timestamp / reserveRoundLength;
    }

    function _ethSignedHash(bytes32 h) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", h));
    }

    /// @dev ecrecover that accepts only canonical 65-byte signatures (low s, v 27/28);
    ///      returns address(0) for anything else.
    function _recover(bytes32 digest, bytes calldata sig) internal pure returns (address) {
        if (sig.length != 65) return address(0);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 32))
            v := byte(0, calldataload(add(sig.offset, 64)))
        }
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ReentrancyGuard} from "./utils/ReentrancyGuard.sol";
import {IReserveGate} from "./interfaces/IReserveGate.sol";

/// @title ProviderRegistry
/// @notice Providers (Flurry nodes that sell inference) bond native currency against their
///         node address (msg.sender, the node's Ethereum key) and publish where and what
///         they serve. Bonded and unbonding stake can be slashed by the arbiter.
///
/// Roles:
/// - `owner`: may replace the arbiter and hand ownership on (`transferOwnership`;
///   address(0) renounces, after which only the arbiter can replace itself).
/// - `arbiter`: the only address that may `slash`; may hand its role to another address.
///
/// Stake lifecycle: `stake()` adds to the bonded stake. `unbond(amount)` moves `amount`
/// into a single unbonding bucket and (re)starts its timer: all unbonding funds become
/// withdrawable `unbondingPeriod` seconds after the latest `unbond`. `withdrawUnbonded()`
/// pays the bucket out after that. `rebond()` moves the bucket back to bonded stake.
///
/// Slashing: `slash(provider, amount, challenger)` takes `amount` from the bonded stake
/// first and then from the unbonding bucket (so unbonding does not escape a slash).
/// `amount * challengerShareBps / 10_000` (rounded down) goes to `challenger`; the rest
/// is burned by sending it to `BURN_ADDRESS` (0x…dEaD). If `challenger` is address(0),
/// everything is burned.
///
/// Invariant: address(this).balance == totalBonded + totalUnbonding.
contract ProviderRegistry is ReentrancyGuard, IReserveGate {
    /// @notice Where the burned part of a slash is sent.
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;
    uint256 public constant BPS = 10_000;

    struct Provider {
        uint128 bonded; // bonded stake, wei
        uint128 unbonding; // stake in the unbonding bucket, wei
        uint64 unbondingWithdrawTime; // when the bucket may be withdrawn (0 = empty)
        bytes32 capabilities; // hash (or packed id) of the capability document
        string serviceUri; // multiaddr or URL where the node serves
    }

    error ZeroValue();
    error ZeroAddress();
    error InvalidConfig();
    error AmountTooLarge(uint256 amount);
    error NotOwner(address caller);
    error NotArbiter(address caller);
    error NotArbiterOrOwner(address caller);
    error InsufficientBonded(uint256 requested, uint256 bonded);
    error InsufficientStake(uint256 requested, uint256 available);
    error NothingUnbonding();
    error UnbondingNotOver(uint256 withdrawTime);
    error TransferFailed(address to, uint256 amount);

    event Staked(address indexed provider, uint256 amount, uint256 newBonded);
    event MetadataUpdated(address indexed provider, string serviceUri, bytes32 capabilities);
    event UnbondStarted(address indexed provider, uint256 amount, uint256 totalUnbonding, uint256 withdrawTime);
    event Rebonded(address indexed provider, uint256 amount, uint256 newBonded);
    event UnbondedWithdrawn(address indexed provider, uint256 amount);
    event Slashed(
        address indexed provider,
        address indexed challenger,
        uint256 amount,
        uint256 fromBonded,
        uint256 fromUnbonding,
        uint256 challengerReward,
        uint256 burned
    );
    event ArbiterChanged(address indexed previousArbiter, address indexed newArbiter);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice Seconds between the latest `unbond` and `withdrawUnbonded`.
    uint256 public immutable unbondingPeriod;
    /// @notice Challenger's share of a slash in basis points (0..10_000).
    uint256 public immutable challengerShareBps;
    /// @notice Bonded stake at or above which a provider counts as active (and may draw on
    ///         TicketBroker reserves when this registry is the broker's reserve gate).
    uint256 public immutable minStake;

    address public owner;
    address public arbiter;
    uint256 public totalBonded;
    uint256 public totalUnbonding;
    mapping(address provider => Provider) internal _providers;

    // ---------------------------------------------------------------- signed jobs (EIP-712)
    // The messages of docs/verification.md. A provider that signed two receipts with
    // different results for one request, or a receipt inconsistent with the request it
    // answers, is slashed by anyone holding the signatures: no arbiter needed.

    struct JobRequest {
        bytes32 jobId;
        address client;
        address provider;
        bytes32 modelId;
        bytes32 promptTokensHash;
        uint32 nPrompt;
        uint32 temperature;
        uint32 topK;
        uint32 topP;
        uint32 minP;
        uint32 repeatPenalty;
        uint32 repeatLastN;
        uint32 maxTokens;
        bytes32 stopHash;
        bytes32 clientSeed;
        bytes32 auditCommit;
        uint256 priceIn;
        uint256 priceOut;
        uint64 deadline;
    }

    struct Receipt {
        bytes32 requestDigest;
        bytes32 jobId;
        address provider;
        bytes32 modelId;
        bytes32 engineProfile;
        bytes32 seed;
        bytes32 promptTokensHash;
        uint32 nPrompt;
        bytes32 outputTokensHash;
        uint32 nOut;
        uint8 finishReason;
        bytes32 commitRoot;
        uint32 nChunks;
        uint64 tAccept;
        uint64 tFirst;
        uint64 tDone;
    }

    bytes32 public constant JOB_REQUEST_TYPEHASH = keccak256(
        "JobRequest(bytes32 jobId,address client,address provider,bytes32 modelId,bytes32 promptTokensHash,uint32 nPrompt,uint32 temperature,uint32 topK,uint32 topP,uint32 minP,uint32 repeatPenalty,uint32 repeatLastN,uint32 maxTokens,bytes32 stopHash,bytes32 clientSeed,bytes32 auditCommit,uint256 priceIn,uint256 priceOut,uint64 deadline)"
    );
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 requestDigest,bytes32 jobId,address provider,bytes32 modelId,bytes32 engineProfile,bytes32 seed,bytes32 promptTokensHash,uint32 nPrompt,bytes32 outputTokensHash,uint32 nOut,uint8 finishReason,bytes32 commitRoot,uint32 nChunks,uint64 tAccept,uint64 tFirst,uint64 tDone)"
    );
    uint8 internal constant FINISH_EOS = 0;
    uint8 internal constant FINISH_LENGTH = 2;
    /// @dev secp256k1n / 2: signatures with a larger s are refused (no malleable twins).
    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @notice Jobs already slashed for, by keccak256(provider, jobId): one slash per job.
    mapping(bytes32 => bool) public slashedJob;

    error BadSignature();
    error NotEquivocation();
    error NotInconsistent();
    error AlreadySlashed(address provider, bytes32 jobId);

    event JobFaultSlashed(address indexed provider, bytes32 indexed jobId, string fault, address challenger);

    // ---------------------------------------------------------------- compute-fault disputes
    // A fault that only re-execution shows (the receipt agrees with its request, but the
    // computation does not reproduce) is decided by the arbiter: the challenger opens a
    // dispute over a provider-signed receipt with a bond and the hash of the job bundle
    // (the evidence it hands to the arbiter); the arbiter re-runs the job and resolves
    // it. A confirmed fault slashes the provider's whole stake (the challenger's share to
    // the challenger) and returns the bond; a rejected dispute burns the bond. The arbiter
    // may be a committee contract whose members vote (docs/verification.md).

    struct Dispute {
        address challenger;
        address provider;
        bytes32 jobId;
        bytes32 evidence;
        uint256 bond;
        uint64 opened;
        uint8 state;
    }

    uint8 public constant DISPUTE_OPEN = 1;
    uint8 public constant DISPUTE_FAULT = 2;
    uint8 public constant DISPUTE_REJECTED = 3;

    /// @notice Disputes by id (from 1).
    mapping(uint256 id => Dispute) public disputes;
    /// @notice Disputes opened so far (the last id).
    uint256 public disputeCount;

    error WrongBond(uint256 sent, uint256 required);
    error NotOpen(uint256 id);

    event DisputeOpened(
        uint256 indexed id, address indexed provider, bytes32 indexed jobId, address challenger, bytes32 evidence
    );
    event DisputeResolved(uint256 indexed id, bool fault, address arbiter);

    /// @param owner_ may replace the arbiter (address(0): no owner)
    /// @param arbiter_ the slasher (non-zero)
    /// @param unbondingPeriod_ seconds (<= 2^32)
    /// @param challengerShareBps_ challenger's cut of a slash, basis points (<= 10_000)
    /// @param minStake_ bonded stake that makes a provider active (> 0)
    constructor(
        address owner_,
        address arbiter_,
        uint256 unbondingPeriod_,
        uint256 challengerShareBps_,
        uint256 minStake_
    ) {
        if (arbiter_ == address(0)) revert ZeroAddress();
        if (challengerShareBps_ > BPS || unbondingPeriod_ > type(uint32).max || minStake_ == 0) {
            revert InvalidConfig();
        }
        owner = owner_;
        arbiter = arbiter_;
        unbondingPeriod = unbondingPeriod_;
        challengerShareBps = challengerShareBps_;
        minStake = minStake_;
        emit OwnershipTransferred(address(0), owner_);
        emit ArbiterChanged(address(0), arbiter_);
    }

    // ---------------------------------------------------------------- provider actions

    /// @notice Adds msg.value to the caller's bonded stake.
    function stake() external payable {
        if (msg.value == 0) revert ZeroValue();
        Provider storage p = _providers[msg.sender];
        uint256 b = uint256(p.bonded) + msg.value;
        if (b + p.unbonding > type(uint128).max) revert AmountTooLarge(msg.value);
        // forge-lint: disable-next-line(unsafe-typecast) -- bonded + unbonding <= type(uint128).max, checked above
        p.bonded = uint128(b);
        totalBonded += msg.value;
        emit Staked(msg.sender, msg.value, b);
    }

    /// @notice Sets the caller's service URI (multiaddr or URL) and capabilities hash.
    function updateMetadata(string calldata serviceUri, bytes32 capabilities) external {
        Provider storage p = _providers[msg.sender];
        p.serviceUri = serviceUri;
        p.capabilities = capabilities;
        emit MetadataUpdated(msg.sender, serviceUri, capabilities);
    }

    /// @notice Moves `amount` of bonded stake into the unbonding bucket and restarts the
    ///         bucket's timer at now + unbondingPeriod (for the whole bucket).
    function unbond(uint256 amount) external {
        if (amount == 0) revert ZeroValue();
        Provider storage p = _providers[msg.sender];
        uint256 b = p.bonded;
        if (amount > b) revert InsufficientBonded(amount, b);
        // forge-lint: disable-next-line(unsafe-typecast) -- b - amount < b, which came from a uint128
        p.bonded = uint128(b - amount);
        uint256 u = uint256(p.unbonding) + amount;
        // forge-lint: disable-next-line(unsafe-typecast) -- u <= bonded + unbonding, kept <= type(uint128).max by stake()
        p.unbonding = uint128(u);
        uint256 t = block.timestamp + unbondingPeriod;
        // forge-lint: disable-next-line(unsafe-typecast) -- unbondingPeriod <= 2^32 (constructor), timestamp + 2^32 fits in 64 bits
        p.unbondingWithdrawTime = uint64(t);
        totalBonded -= amount;
        totalUnbonding += amount;
        emit UnbondStarted(msg.sender, amount, u, t);
    }

    /// @notice Moves the whole unbonding bucket back to bonded stake.
    function rebond() external {
        Provider storage p = _providers[msg.sender];
        uint256 u = p.unbonding;
        if (u == 0) revert NothingUnbonding();
        uint256 b = uint256(p.bonded) + u;
        // forge-lint: disable-next-line(unsafe-typecast) -- bonded + unbonding <= type(uint128).max, kept by stake()
        p.bonded = uint128(b);
        p.unbonding = 0;
        p.unbondingWithdrawTime = 0;
        totalUnbonding -= u;
        totalBonded += u;
        emit Rebonded(msg.sender, u, b);
    }

    /// @notice Pays out the unbonding bucket once its timer has run out.
    function withdrawUnbonded() external nonReentrant {
        Provider storage p = _providers[msg.sender];
        uint256 u = p.unbonding;
        if (u == 0) revert NothingUnbonding();
        uint256 t = p.unbondingWithdrawTime;
        if (block.timestamp < t) revert UnbondingNotOver(t);
        p.unbonding = 0;
        p.unbondingWithdrawTime = 0;
        totalUnbonding -= u;
        emit UnbondedWithdrawn(msg.sender, u);
        _send(msg.sender, u);
    }

    // ---------------------------------------------------------------- arbiter & owner

    /// @notice Slashes `amount` from `provider` (bonded first, then unbonding). The
    ///         challenger gets `amount * challengerShareBps / 10_000`; the rest is burned.
    ///         Only the arbiter may call.
    function slash(address provider, uint256 amount, address challenger) external nonReentrant {
        if (msg.sender != arbiter) revert NotArbiter(msg.sender);
        _slash(provider, amount, challenger);
    }

    function _slash(address provider, uint256 amount, address challenger) internal {
        if (amount == 0) revert ZeroValue();
        Provider storage p = _providers[provider];
        uint256 b = p.bonded;
        uint256 u = p.unbonding;
        if (amount > b + u) revert InsufficientStake(amount, b + u);
        uint256 fromBonded = amount <= b ? amount : b;
        uint256 fromUnbonding = amount - fromBonded;
        // forge-lint: disable-next-line(unsafe-typecast) -- b - fromBonded <= b, which came from a uint128
        p.bonded = uint128(b - fromBonded);
        totalBonded -= fromBonded;
        if (fromUnbonding != 0) {
            // forge-lint: disable-next-line(unsafe-typecast) -- u - fromUnbonding < u, which came from a uint128
            p.unbonding = uint128(u - fromUnbonding);
            if (u == fromUnbonding) p.unbondingWithdrawTime = 0;
            totalUnbonding -= fromUnbonding;
        }
        uint256 reward = challenger == address(0) ? 0 : amount * challengerShareBps / BPS;
        uint256 burned = amount - reward;
        emit Slashed(provider, challenger, amount, fromBonded, fromUnbonding, reward, burned);
        if (reward != 0) _send(challenger, reward);
        if (burned != 0) _send(BURN_ADDRESS, burned);
    }

    /// @notice The EIP-712 domain separator: name "Flurry", version "1", this chain,
    ///         this contract.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Flurry"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice The EIP-712 digest a client signs for `q`.
    function jobRequestDigest(JobRequest calldata q) public view returns (bytes32) {
        // Every field is a static type, so the encoding is one 32-byte word per field and
        // may be built in parts (one abi.encode of all of them would overflow the stack).
        bytes memory a =
            abi.encode(JOB_REQUEST_TYPEHASH, q.jobId, q.client, q.provider, q.modelId, q.promptTokensHash, q.nPrompt);
        bytes memory b = abi.encode(q.temperature, q.topK, q.topP, q.minP, q.repeatPenalty, q.repeatLastN, q.maxTokens);
        bytes memory c = abi.encode(q.stopHash, q.clientSeed, q.auditCommit, q.priceIn, q.priceOut, q.deadline);
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), keccak256(bytes.concat(a, b, c))));
    }

    /// @notice The EIP-712 digest a provider signs for `r`.
    function receiptDigest(Receipt calldata r) public view returns (bytes32) {
        bytes memory a =
            abi.encode(RECEIPT_TYPEHASH, r.requestDigest, r.jobId, r.provider, r.modelId, r.engineProfile, r.seed);
        bytes memory b = abi.encode(r.promptTokensHash, r.nPrompt, r.outputTokensHash, r.nOut, r.finishReason);
        bytes memory c = abi.encode(r.commitRoot, r.nChunks, r.tAccept, r.tFirst, r.tDone);
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), keccak256(bytes.concat(a, b, c))));
    }

    /// @notice Slashes a provider that signed two receipts with different results for
    ///         one request (same request digest and job): the engine is deterministic, so
    ///         at least one of them is false. All its stake; the caller is the challenger.
    function slashEquivocation(Receipt calldata a, bytes calldata sigA, Receipt calldata b, bytes calldata sigB)
        external
        nonReentrant
    {
        if (
            a.provider != b.provider || a.jobId != b.jobId || a.requestDigest != b.requestDigest
                || (a.outputTokensHash == b.outputTokensHash
                    && a.commitRoot == b.commitRoot
                    && a.nOut == b.nOut
                    && a.finishReason == b.finishReason)
        ) revert NotEquivocation();
        if (_signer(receiptDigest(a), sigA) != a.provider || _signer(receiptDigest(b), sigB) != a.provider) {
            revert BadSignature();
        }
        _slashJob(a.provider, a.jobId, "equivocation");
    }

    /// @notice Slashes a provider whose signed receipt contradicts the request it answers:
    ///         another model, prompt or seed than the request fixes, more tokens than it
    ///         allows, or "length" before the limit. The receipt's requestDigest binds the
    ///         provider to `q`, so the client's signature is not needed.
    function slashInconsistent(JobRequest calldata q, Receipt calldata r, bytes calldata sigR) external nonReentrant {
        if (r.requestDigest != jobRequestDigest(q)) revert NotInconsistent();
        if (_signer(receiptDigest(r), sigR) != r.provider) revert BadSignature();
        bytes32 seed = keccak256(abi.encodePacked("flurry/seed/v2", q.clientSeed));
        uint256 allowed = uint256(q.maxTokens) + (r.finishReason == FINISH_EOS ? 1 : 0);
        bool inconsistent = r.jobId != q.jobId || r.provider != q.provider || r.modelId != q.modelId || r.seed != seed
            || r.promptTokensHash != q.promptTokensHash || r.nPrompt != q.nPrompt || r.nOut > allowed
            || r.finishReason > FINISH_LENGTH || (r.finishReason == FINISH_LENGTH && r.nOut != q.maxTokens);
        if (!inconsistent) revert NotInconsistent();
        _slashJob(r.provider, r.jobId, "inconsistent");
    }

    function _slashJob(address provider, bytes32 jobId, string memory fault) internal {
        bytes32 key = keccak256(abi.encode(provider, jobId));
        if (slashedJob[key]) revert AlreadySlashed(provider, jobId);
        slashedJob[key] = true;
        Provider storage p = _providers[provider];
        uint256 all = uint256(p.bonded) + uint256(p.unbonding);
        emit JobFaultSlashed(provider, jobId, fault, msg.sender);
        _slash(provider, all, msg.sender);
    }

    /// @notice The bond a challenger puts up to open a dispute: a tenth of the minimum
    ///         stake (at least 1 wei), burned if the arbiter finds no fault.
    function disputeBond() public view returns (uint256) {
        uint256 b = minStake / 10;
        return b == 0 ? 1 : b;
    }

    /// @notice Opens a dispute over a receipt `r` its provider signed (`sigR`), with the
    ///         hash of the job bundle the arbiter is to re-run (`evidence`). The caller is
    ///         the challenger and sends exactly `disputeBond()`.
    function openDispute(Receipt calldata r, bytes calldata sigR, bytes32 evidence)
        external
        payable
        nonReentrant
        returns (uint256 id)
    {
        uint256 bond = disputeBond();
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        if (_signer(receiptDigest(r), sigR) != r.provider) revert BadSignature();
        if (slashedJob[keccak256(abi.encode(r.provider, r.jobId))]) revert AlreadySlashed(r.provider, r.jobId);
        id = ++disputeCount;
        disputes[id] = Dispute({
            challenger: msg.sender,
            provider: r.provider,
            jobId: r.jobId,
            evidence: evidence,
            bond: bond,
            opened: uint64(block.timestamp),
            state: DISPUTE_OPEN
        });
        emit DisputeOpened(id, r.provider, r.jobId, msg.sender, evidence);
    }

    /// @notice The arbiter's verdict on dispute `id`: a fault slashes the provider's whole
    ///         stake (once per job; the challenger's share to the challenger) and returns
    ///         the bond; no fault burns the bond.
    function resolveDispute(uint256 id, bool fault) external nonReentrant {
        if (msg.sender != arbiter) revert NotArbiter(msg.sender);
        Dispute storage d = disputes[id];
        if (d.state != DISPUTE_OPEN) revert NotOpen(id);
        d.state = fault ? DISPUTE_FAULT : DISPUTE_REJECTED;
        emit DisputeResolved(id, fault, msg.sender);
        uint256 bond = d.bond;
        if (!fault) {
            _send(BURN_ADDRESS, bond);
            return;
        }
        bytes32 key = keccak256(abi.encode(d.provider, d.jobId));
        Provider storage p = _providers[d.provider];
        uint256 all = uint256(p.bonded) + uint256(p.unbonding);
        if (!slashedJob[key] && all != 0) {
            slashedJob[key] = true;
            emit JobFaultSlashed(d.provider, d.jobId, "compute", d.challenger);
            _slash(d.provider, all, d.challenger);
        }
        _send(d.challenger, bond);
    }

    /// @dev The address that made `sig` (r ‖ s ‖ v, low s, v 27 or 28) over `digest`.
    function _signer(bytes32 digest, bytes calldata sig) internal pure returns (address) {
        if (sig.length != 65) revert BadSignature();
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (uint256(s) > HALF_N || (v != 27 && v != 28)) revert BadSignature();
        address who = ecrecover(digest, v, r, s);
        if (who == address(0)) revert BadSignature();
        return who;
    }

    /// @notice Replaces the arbiter. Callable by the arbiter itself or the owner.
    function setArbiter(address newArbiter) external {
        if (msg.sender != arbiter && msg.sender != owner) revert NotArbiterOrOwner(msg.sender);
        if (newArbiter == address(0)) revert ZeroAddress();
        emit ArbiterChanged(arbiter, newArbiter);
        arbiter = newArbiter;
    }

    /// @notice Hands ownership to `newOwner`; address(0) renounces it. Owner only.
    function transferOwnership(address newOwner) external {
        if (msg.sender != owner || msg.sender == address(0)) revert NotOwner(msg.sender);
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    // ---------------------------------------------------------------- views

    /// @notice Everything known about `provider`.
    function getProvider(address provider)
        external
        view
        returns (
            uint256 bonded,
            uint256 unbonding,
            uint256 unbondingWithdrawTime,
            string memory serviceUri,
            bytes32 capabilities
        )
    {
        Provider storage p = _providers[provider];
        return (p.bonded, p.unbonding, p.unbondingWithdrawTime, p.serviceUri, p.capabilities);
    }

    /// @notice Bonded stake of `provider` (unbonding funds excluded).
    function bondedOf(address provider) external view returns (uint256) {
        return _providers[provider].bonded;
    }

    /// @notice True when `provider`'s bonded stake is at least `minStake`.
    function isActive(address provider) public view returns (bool) {
        return _providers[provider].bonded >= minStake;
    }

    /// @inheritdoc IReserveGate
    function isEligibleRecipient(address recipient) external view returns (bool) {
        return isActive(recipient);
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}

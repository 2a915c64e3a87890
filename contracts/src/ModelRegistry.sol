// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ModelRegistry
/// @notice On-chain names and lineage for model files. A model is identified by its
///         `modelId`, the BLAKE3 root of the model file (Flurry's `ModelId`), and records
///         an owner, an optional parent (the model it was fine-tuned, quantised or merged
///         from), a licence identifier (SPDX, e.g. "Apache-2.0") and a content URI.
///
/// Lineage cannot contain a cycle: a parent must already be registered when its child is
/// registered, and a model's parent never changes afterwards, so every model is strictly
/// younger than its parent and `depth(child) == depth(parent) + 1`.
contract ModelRegistry {
    struct Model {
        address owner; // may update the record and hand it on
        uint64 registeredAt; // block.timestamp of registration
        uint32 depth; // 0 for a root, parent's depth + 1 otherwise
        bytes32 parent; // bytes32(0) for a root model
        string licence; // licence identifier, e.g. an SPDX expression
        string contentUri; // where the file can be fetched (ipfs://, https://, flurry://…)
    }

    error ZeroModelId();
    error ZeroAddress();
    error ModelAlreadyRegistered(bytes32 modelId);
    error ModelNotRegistered(bytes32 modelId);
    error ParentNotRegistered(bytes32 parent);
    error NotModelOwner(bytes32 modelId, address caller);

    event ModelRegistered(
        bytes32 indexed modelId, address indexed owner, bytes32 indexed parent, string licence, string contentUri
    );
    event ModelUpdated(bytes32 indexed modelId, string licence, string contentUri);
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);

    mapping(bytes32 modelId => Model) internal _models;
    /// @notice Number of registered models.
    uint256 public modelCount;

    /// @notice Registers `modelId` owned by the caller.
    /// @param modelId BLAKE3 root of the model file (non-zero, not yet registered)
    /// @param parent the model this one derives from, or bytes32(0); must be registered
    /// @param licence licence identifier (SPDX)
    /// @param contentUri where to fetch the file
    function register(bytes32 modelId, bytes32 parent, string calldata licence, string calldata contentUri) external {
        if (modelId == bytes32(0)) revert ZeroModelId();
        Model storage m = _models[modelId];
        if (m.owner != address(0)) revert ModelAlreadyRegistered(modelId);
        uint32 depth;
        if (parent != bytes32(0)) {
            Model storage p = _models[parent];
            if (p.owner == address(0)) revert ParentNotRegistered(parent);
            depth = p.depth + 1;
        }
        m.owner = msg.sender;
        m.registeredAt = uint64(block.timestamp);
        m.depth = depth;
        m.parent = parent;
        m.licence = licence;
        m.contentUri = contentUri;
        unchecked {
            ++modelCount;
        }
        emit ModelRegistered(modelId, msg.sender, parent, licence, contentUri);
    }

    /// @notice Replaces the licence and content URI. Owner only; the parent is immutable.
    function update(bytes32 modelId, string calldata licence, string calldata contentUri) external {
        Model storage m = _ownedBySender(modelId);
        m.licence = licence;
        m.contentUri = contentUri;
        emit ModelUpdated(modelId, licence, contentUri);
    }

    /// @notice Hands the record to `newOwner` (non-zero). Owner only.
    function transferOwnership(bytes32 modelId, address newOwner) external {
        Model storage m = _ownedBySender(modelId);
        if (newOwner == address(0)) revert ZeroAddress();
        emit ModelOwnershipTransferred(modelId, msg.sender, newOwner);
        m.owner = newOwner;
    }

    /// @notice The ancestors of `modelId`, nearest first (parent, grandparent, …), at most
    ///         `maxDepth` of them. Empty for a root model.
    function lineage(bytes32 modelId, uint256 maxDepth) external view returns (bytes32[] memory chain) {
        Model storage m = _models[modelId];
        if (m.owner == address(0)) revert ModelNotRegistered(modelId);
        uint256 n = m.depth < maxDepth ? m.depth : maxDepth;
        chain = new bytes32[](n);
        bytes32 cur = m.parent;
        for (uint256 i; i < n; ++i) {
            chain[i] = cur;
            cur = _models[cur].parent;
        }
    }

    /// @notice The full record of `modelId` (reverts when not registered).
    function getModel(bytes32 modelId) external view returns (Model memory) {
        Model storage m = _models[modelId];
        if (m.owner == address(0)) revert ModelNotRegistered(modelId);
        return m;
    }

    /// @notice True when `modelId` is registered.
    function exists(bytes32 modelId) external view returns (bool) {
        return _models[modelId].owner != address(0);
    }

    /// @notice Owner of `modelId`, or address(0) when not registered.
    function ownerOf(bytes32 modelId) external view returns (address) {
        return _models[modelId].owner;
    }

    /// @notice Parent of `modelId` (bytes32(0) for roots and unregistered ids).
    function parentOf(bytes32 modelId) external view returns (bytes32) {
        return _models[modelId].parent;
    }

    function _ownedBySender(bytes32 modelId) internal view returns (Model storage m) {
        m = _models[modelId];
        if (m.owner == address(0)) revert ModelNotRegistered(modelId);
        if (m.owner != msg.sender) revert NotModelOwner(modelId, msg.sender);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ReentrancyGuard
/// @notice Minimal reentrancy lock kept in transient storage (EIP-1153, Cancun), so the
///         lock costs ~200 gas instead of two cold SSTOREs and is cleared at the end of
///         every transaction even if a caller forgets.
abstract contract ReentrancyGuard {
    /// @notice A guarded function was entered while another guarded function was running.
    error ReentrantCall();

    bool private transient _entered;

    modifier nonReentrant() {
        if (_entered) revert ReentrantCall();
        _entered = true;
        _;
        _entered = false;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IReserveGate
/// @notice Decides which recipients may draw on a sender's reserve in the TicketBroker.
///         Reserve allocations are per recipient, so without a gate a sender could
///         create throwaway recipient addresses to drain its own reserve before honest
///         recipients claim. A gate that requires bonded stake (ProviderRegistry) makes
///         each extra identity cost money.
interface IReserveGate {
    /// @return True when `recipient` may claim from senders' reserves.
    function isEligibleRecipient(address recipient) external view returns (bool);
}

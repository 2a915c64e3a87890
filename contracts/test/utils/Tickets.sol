// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {TestBase} from "../Test.sol";
import {TicketBroker} from "../../src/TicketBroker.sol";

/// @notice Builds and signs tickets the way a Flurry node does.
abstract contract Tickets is TestBase {
    /// @dev secp256k1 group order.
    uint256 internal constant SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    function randFor(uint256 seed) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("recipient rand", seed)));
    }

    function newTicket(
        address sender,
        address recipient,
        uint256 faceValue,
        uint256 winProb,
        uint256 nonce,
        uint256 expirationTime,
        uint256 recipientRand
    ) internal pure returns (TicketBroker.Ticket memory t) {
        t = TicketBroker.Ticket({
            recipient: recipient,
            sender: sender,
            faceValue: faceValue,
            winProb: winProb,
            senderNonce: nonce,
            expirationTime: expirationTime,
            recipientRandHash: keccak256(abi.encodePacked(recipientRand)),
            auxData: ""
        });
    }

    /// @dev The documented ticket hash, computed independently of the contract.
    function expectedTicketHash(TicketBroker broker, TicketBroker.Ticket memory t) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                block.chainid,
                address(broker),
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

    /// @dev EIP-191 personal_sign over the ticket hash: r ++ s ++ v (v = 27/28).
    function signTicket(TicketBroker broker, uint256 pk, TicketBroker.Ticket memory t)
        internal
        view
        returns (bytes memory)
    {
        bytes32 h = expectedTicketHash(broker, t);
        bytes32 digest = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", h));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The same signature with s' = n - s and the other v: valid for ecrecover, but not
    ///      canonical; the broker must reject it.
    function malleate(bytes memory sig) internal pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        return abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
    }
}

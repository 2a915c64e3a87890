// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";

/// Signature-only slashing: equivocation and a receipt inconsistent with its request.
contract JobFaultsTest is Test {
    ProviderRegistry internal reg;
    uint256 internal constant PROVIDER_KEY = 0xB0B;
    uint256 internal constant OTHER_KEY = 0xE7E;
    address internal provider;
    address internal challenger = address(0xC4A1);
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;

    function setUp() public {
        reg = new ProviderRegistry(address(this), address(0xA4B1), 7 days, 5_000, 1 ether);
        provider = vm.addr(PROVIDER_KEY);
        vm.deal(provider, 10 ether);
        vm.prank(provider);
        reg.stake{value: 3 ether}();
    }

    function _request() internal view returns (ProviderRegistry.JobRequest memory q) {
        q.jobId = keccak256("job-1");
        q.client = address(0xC11E);
        q.provider = provider;
        q.modelId = keccak256("model");
        q.promptTokensHash = keccak256("prompt");
        q.nPrompt = 40;
        q.temperature = 0x3f333333; // 0.7
        q.topK = 40;
        q.maxTokens = 16;
        q.clientSeed = keccak256("client seed");
    }

    function _receipt(ProviderRegistry.JobRequest memory q) internal view returns (ProviderRegistry.Receipt memory r) {
        r.requestDigest = reg.jobRequestDigest(q);
        r.jobId = q.jobId;
        r.provider = provider;
        r.modelId = q.modelId;
        r.seed = keccak256(abi.encodePacked("flurry/seed/v2", q.clientSeed));
        r.promptTokensHash = q.promptTokensHash;
        r.nPrompt = q.nPrompt;
        r.outputTokensHash = keccak256("output A");
        r.nOut = 16;
        r.finishReason = 2;
        r.commitRoot = keccak256("root A");
        r.nChunks = 3;
    }

    function _sign(uint256 key, ProviderRegistry.Receipt memory r) internal view returns (bytes memory) {
        (uint8 v, bytes32 rr, bytes32 s) = vm.sign(key, reg.receiptDigest(r));
        return abi.encodePacked(rr, s, v);
    }

    function test_equivocation_is_slashed_once() public {
        ProviderRegistry.Receipt memory a = _receipt(_request());
        ProviderRegistry.Receipt memory b = _receipt(_request());
        b.outputTokensHash = keccak256("output B");
        b.commitRoot = keccak256("root B");
        bytes memory sa = _sign(PROVIDER_KEY, a);
        bytes memory sb = _sign(PROVIDER_KEY, b);
        vm.prank(challenger);
        reg.slashEquivocation(a, sa, b, sb);
        assertEq(reg.bondedOf(provider), 0, "reg.bondedOf(provider)");
        assertEq(challenger.balance, 1.5 ether, "challenger.balance");
        assertEq(DEAD.balance, 1.5 ether, "DEAD.balance");
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.AlreadySlashed.selector, provider, a.jobId));
        reg.slashEquivocation(a, sa, b, sb);
    }

    function test_same_result_twice_is_not_equivocation() public {
        ProviderRegistry.Receipt memory a = _receipt(_request());
        ProviderRegistry.Receipt memory b = _receipt(_request());
        b.tDone = 99; // only the clock differs: an honest re-send
        bytes memory sa = _sign(PROVIDER_KEY, a);
        bytes memory sb = _sign(PROVIDER_KEY, b);
        vm.expectRevert(ProviderRegistry.NotEquivocation.selector);
        reg.slashEquivocation(a, sa, b, sb);
    }

    function test_other_signer_cannot_frame_the_provider() public {
        ProviderRegistry.Receipt memory a = _receipt(_request());
        ProviderRegistry.Receipt memory b = _receipt(_request());
        b.outputTokensHash = keccak256("output B");
        bytes memory sa = _sign(PROVIDER_KEY, a);
        bytes memory sb = _sign(OTHER_KEY, b);
        vm.expectRevert(ProviderRegistry.BadSignature.selector);
        reg.slashEquivocation(a, sa, b, sb);
        assertEq(reg.bondedOf(provider), 3 ether, "reg.bondedOf(provider)");
    }

    function test_receipts_of_two_requests_are_not_equivocation() public {
        ProviderRegistry.JobRequest memory q2 = _request();
        q2.maxTokens = 17;
        ProviderRegistry.Receipt memory a = _receipt(_request());
        ProviderRegistry.Receipt memory b = _receipt(q2);
        b.outputTokensHash = keccak256("output B");
        bytes memory sa = _sign(PROVIDER_KEY, a);
        bytes memory sb = _sign(PROVIDER_KEY, b);
        vm.expectRevert(ProviderRegistry.NotEquivocation.selector);
        reg.slashEquivocation(a, sa, b, sb);
    }

    function test_high_s_twin_signature_is_refused() public {
        ProviderRegistry.Receipt memory a = _receipt(_request());
        ProviderRegistry.Receipt memory b = _receipt(_request());
        b.outputTokensHash = keccak256("output B");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(PROVIDER_KEY, reg.receiptDigest(b));
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory twin = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        bytes memory sa = _sign(PROVIDER_KEY, a);
        vm.expectRevert(ProviderRegistry.BadSignature.selector);
        reg.slashEquivocation(a, sa, b, twin);
    }

    function test_inconsistent_receipts_are_slashed() public {
        ProviderRegistry.JobRequest memory q = _request();
        // Each of these contradicts the request.
        for (uint256 i = 0; i < 6; i++) {
            setUp();
            ProviderRegistry.Receipt memory r = _receipt(q);
            if (i == 0) r.modelId = keccak256("smaller model");
            if (i == 1) r.seed = keccak256("another seed");
            if (i == 2) r.promptTokensHash = keccak256("edited prompt");
            if (i == 3) r.nOut = 17;
            if (i == 4) r.nOut = 9; // "length" before the limit
            if (i == 5) r.finishReason = 7;
            bytes memory sr = _sign(PROVIDER_KEY, r);
            vm.prank(challenger);
            reg.slashInconsistent(q, r, sr);
            assertEq(reg.bondedOf(provider), 0, "reg.bondedOf(provider)");
        }
    }

    function test_consistent_receipt_is_not_slashed() public {
        ProviderRegistry.JobRequest memory q = _request();
        ProviderRegistry.Receipt memory r = _receipt(q);
        bytes memory sr = _sign(PROVIDER_KEY, r);
        vm.expectRevert(ProviderRegistry.NotInconsistent.selector);
        reg.slashInconsistent(q, r, sr);
        // An end-of-generation token may follow max_tokens others.
        r.finishReason = 0;
        r.nOut = 17;
        sr = _sign(PROVIDER_KEY, r);
        vm.expectRevert(ProviderRegistry.NotInconsistent.selector);
        reg.slashInconsistent(q, r, sr);
        // A receipt for another request proves nothing about this one.
        ProviderRegistry.JobRequest memory q2 = _request();
        q2.maxTokens = 99;
        r = _receipt(q2);
        r.modelId = keccak256("smaller model");
        sr = _sign(PROVIDER_KEY, r);
        vm.expectRevert(ProviderRegistry.NotInconsistent.selector);
        reg.slashInconsistent(q, r, sr);
        assertEq(reg.bondedOf(provider), 3 ether, "reg.bondedOf(provider)");
    }
}

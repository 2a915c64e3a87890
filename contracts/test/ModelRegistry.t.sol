// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";

contract ModelRegistryTest is Test {
    event ModelRegistered(
        bytes32 indexed modelId, address indexed owner, bytes32 indexed parent, string licence, string contentUri
    );
    event ModelUpdated(bytes32 indexed modelId, string licence, string contentUri);
    event ModelOwnershipTransferred(bytes32 indexed modelId, address indexed previousOwner, address indexed newOwner);

    ModelRegistry internal reg;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    bytes32 internal constant BASE = keccak256("llama-3.2-1b.f16.gguf");
    bytes32 internal constant TUNE = keccak256("llama-3.2-1b-chat.f16.gguf");
    bytes32 internal constant QUANT = keccak256("llama-3.2-1b-chat.q4_k_m.gguf");

    function setUp() public {
        reg = new ModelRegistry();
    }

    function _chain() internal {
        vm.prank(alice);
        reg.register(BASE, bytes32(0), "Llama-3.2-Community", "ipfs://base");
        vm.prank(bob);
        reg.register(TUNE, BASE, "Llama-3.2-Community", "ipfs://tune");
        vm.prank(bob);
        reg.register(QUANT, TUNE, "Llama-3.2-Community", "https://models.example/q4");
    }

    function test_register_root_and_read() public {
        vm.expectEmit(address(reg));
        emit ModelRegistered(BASE, alice, bytes32(0), "Apache-2.0", "ipfs://base");
        vm.prank(alice);
        reg.register(BASE, bytes32(0), "Apache-2.0", "ipfs://base");
        ModelRegistry.Model memory m = reg.getModel(BASE);
        assertEq(m.owner, alice, "owner");
        assertEq(m.parent, bytes32(0), "root");
        assertEq(m.licence, "Apache-2.0", "licence");
        assertEq(m.contentUri, "ipfs://base", "uri");
        assertEq(uint256(m.depth), 0, "depth");
        assertEq(uint256(m.registeredAt), block.timestamp, "time");
        assertTrue(reg.exists(BASE), "exists");
        assertEq(reg.modelCount(), 1, "count");
    }

    function test_register_duplicate_and_zero_revert() public {
        vm.prank(alice);
        reg.register(BASE, bytes32(0), "MIT", "u");
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelAlreadyRegistered.selector, BASE));
        reg.register(BASE, bytes32(0), "MIT", "u2");
        vm.expectRevert(ModelRegistry.ZeroModelId.selector);
        reg.register(bytes32(0), bytes32(0), "MIT", "u");
        assertEq(reg.ownerOf(BASE), alice, "first owner kept");
    }

    function test_register_parentMustExist() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ParentNotRegistered.selector, BASE));
        reg.register(TUNE, BASE, "MIT", "u");
        // A model cannot name itself as parent: it is not registered yet.
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ParentNotRegistered.selector, TUNE));
        reg.register(TUNE, TUNE, "MIT", "u");
    }

    function test_lineage_walk() public {
        _chain();
        bytes32[] memory full = reg.lineage(QUANT, 10);
        bytes32[] memory want = new bytes32[](2);
        want[0] = TUNE;
        want[1] = BASE;
        assertEq(full, want, "nearest first, up to the root");

        bytes32[] memory one = reg.lineage(QUANT, 1);
        bytes32[] memory want1 = new bytes32[](1);
        want1[0] = TUNE;
        assertEq(one, want1, "maxDepth caps the walk");

        assertEq(reg.lineage(BASE, 10).length, 0, "root has no ancestors");
        assertEq(reg.lineage(QUANT, 0).length, 0, "maxDepth 0");
        assertEq(uint256(reg.getModel(QUANT).depth), 2, "depth");
        assertEq(reg.parentOf(QUANT), TUNE, "parentOf");

        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelNotRegistered.selector, keccak256("nope")));
        reg.lineage(keccak256("nope"), 1);
    }

    function test_lineage_merge_branches() public {
        _chain();
        bytes32 merge = keccak256("merge");
        vm.prank(alice);
        reg.register(merge, QUANT, "MIT", "u"); // a merge records its primary parent
        bytes32 sibling = keccak256("sibling");
        vm.prank(alice);
        reg.register(sibling, BASE, "MIT", "u");
        assertEq(reg.lineage(merge, 100).length, 3, "merge -> quant -> tune -> base");
        assertEq(reg.lineage(sibling, 100)[0], BASE, "sibling -> base");
    }

    function test_update_ownerOnly() public {
        _chain();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotModelOwner.selector, TUNE, alice));
        reg.update(TUNE, "GPL-3.0", "evil://");

        vm.expectEmit(address(reg));
        emit ModelUpdated(TUNE, "Apache-2.0", "ipfs://tune2");
        vm.prank(bob);
        reg.update(TUNE, "Apache-2.0", "ipfs://tune2");
        ModelRegistry.Model memory m = reg.getModel(TUNE);
        assertEq(m.licence, "Apache-2.0", "licence");
        assertEq(m.contentUri, "ipfs://tune2", "uri");
        assertEq(m.parent, BASE, "parent unchanged");

        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ModelNotRegistered.selector, keccak256("x")));
        reg.update(keccak256("x"), "MIT", "u");
    }

    function test_transferOwnership() public {
        _chain();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotModelOwner.selector, TUNE, alice));
        reg.transferOwnership(TUNE, alice);

        vm.prank(bob);
        vm.expectRevert(ModelRegistry.ZeroAddress.selector);
        reg.transferOwnership(TUNE, address(0));

        vm.expectEmit(address(reg));
        emit ModelOwnershipTransferred(TUNE, bob, alice);
        vm.prank(bob);
        reg.transferOwnership(TUNE, alice);
        assertEq(reg.ownerOf(TUNE), alice, "new owner");

        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotModelOwner.selector, TUNE, bob));
        reg.update(TUNE, "MIT", "u");
        vm.prank(alice);
        reg.update(TUNE, "MIT", "u");
    }

    // ------------------------------------------------------------ fuzz

    /// @dev A random chain of length n: lineage returns exactly the ancestors, capped.
    function testFuzz_lineage_chain(uint8 n, uint8 cap, bytes32 salt) public {
        n = uint8(bound(n, 1, 40));
        bytes32[] memory ids = new bytes32[](n);
        bytes32 parent;
        for (uint256 i; i < n; ++i) {
            ids[i] = keccak256(abi.encode(salt, i));
            reg.register(ids[i], parent, "MIT", "u");
            parent = ids[i];
        }
        bytes32[] memory got = reg.lineage(ids[n - 1], cap);
        uint256 want = cap < n - 1 ? cap : n - 1;
        assertEq(got.length, want, "length");
        for (uint256 i; i < got.length; ++i) {
            assertEq(got[i], ids[n - 2 - i], "ancestor order");
        }
    }

    /// @dev Registering under any unregistered non-zero parent fails.
    function testFuzz_register_unknownParent(bytes32 id, bytes32 parent) public {
        vm.assume(id != bytes32(0) && parent != bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.ParentNotRegistered.selector, parent));
        reg.register(id, parent, "MIT", "u");
    }

    /// @dev Nobody but the owner can update or transfer.
    function testFuzz_update_nonOwner(address caller) public {
        vm.assume(caller != alice);
        vm.prank(alice);
        reg.register(BASE, bytes32(0), "MIT", "u");
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotModelOwner.selector, BASE, caller));
        reg.update(BASE, "x", "y");
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NotModelOwner.selector, BASE, caller));
        reg.transferOwnership(BASE, caller);
    }
}

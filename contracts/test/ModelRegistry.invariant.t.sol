// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, TestBase} from "./Test.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";

contract ModelHandler is TestBase {
    ModelRegistry public immutable reg;
    bytes32[] public ids; // in registration order
    mapping(bytes32 => uint256) public orderOf; // 1-based registration index
    address[] internal owners;

    constructor(ModelRegistry r) {
        reg = r;
        owners.push(address(0x1001));
        owners.push(address(0x1002));
        owners.push(address(0x1003));
    }

    function count() external view returns (uint256) {
        return ids.length;
    }

    /// @dev Registers a model under a random existing parent (or as a root), or tries a
    ///      bad registration (duplicate / unknown parent) that must fail.
    function register(uint256 seed, uint256 parentPick, uint8 mode, uint256 who) external {
        address o = owners[who % owners.length];
        bytes32 id = keccak256(abi.encode("model", seed));
        bytes32 parent;
        if (mode % 4 == 1 && ids.length != 0) parent = ids[parentPick % ids.length];
        else if (mode % 4 == 2) parent = keccak256(abi.encode("unknown", parentPick)); // must fail
        else if (mode % 4 == 3 && ids.length != 0) id = ids[seed % ids.length]; // duplicate: must fail
        vm.prank(o);
        try reg.register(id, parent, "MIT", "u") {
            ids.push(id);
            orderOf[id] = ids.length;
        } catch {}
    }

    function update(uint256 pick, uint256 who) external {
        if (ids.length == 0) return;
        vm.prank(owners[who % owners.length]);
        try reg.update(ids[pick % ids.length], "Apache-2.0", "ipfs://x") {} catch {}
    }

    function transfer(uint256 pick, uint256 who, uint256 to) external {
        if (ids.length == 0) return;
        vm.prank(owners[who % owners.length]);
        try reg.transferOwnership(ids[pick % ids.length], owners[to % owners.length]) {} catch {}
    }
}

contract ModelRegistryInvariantTest is Test {
    ModelRegistry internal reg;
    ModelHandler internal handler;

    function setUp() public {
        reg = new ModelRegistry();
        handler = new ModelHandler(reg);
        targetContract(address(handler));
    }

    /// @dev Every model's lineage ends at a root, has `depth` entries, and each ancestor was
    ///      registered before its descendant: no cycles, no dangling parents.
    function invariant_lineageIsAcyclicAndComplete() public view {
        uint256 n = handler.count();
        assertEq(reg.modelCount(), n, "count");
        for (uint256 i; i < n; ++i) {
            bytes32 id = handler.ids(i);
            ModelRegistry.Model memory m = reg.getModel(id);
            assertTrue(m.owner != address(0), "owner set");
            bytes32[] memory chain = reg.lineage(id, type(uint256).max);
            assertEq(chain.length, m.depth, "length == depth");
            uint256 prevOrder = handler.orderOf(id);
            for (uint256 j; j < chain.length; ++j) {
                uint256 o = handler.orderOf(chain[j]);
                assertTrue(o != 0, "ancestor registered");
                assertTrue(o < prevOrder, "ancestor older than descendant");
                prevOrder = o;
            }
            if (chain.length != 0) {
                assertEq(reg.parentOf(chain[chain.length - 1]), bytes32(0), "ends at a root");
            }
        }
    }
}

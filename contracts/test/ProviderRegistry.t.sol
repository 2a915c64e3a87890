// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";

/// @dev Challenger that refuses payment, to show the arbiter can fall back to address(0).
contract RejectingChallenger {
    receive() external payable {
        revert("no");
    }
}

contract ProviderRegistryTest is Test {
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

    uint256 internal constant PERIOD = 7 days;
    uint256 internal constant SHARE_BPS = 2_500; // 25% to the challenger
    uint256 internal constant MIN_STAKE = 1 ether;
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;

    ProviderRegistry internal reg;
    address internal owner = address(0x0A11);
    address internal arbiter = address(0xA4B1);
    address internal provider = address(0x9001);
    address internal challenger = address(0xC4A1);

    function setUp() public {
        vm.warp(1_700_000_000);
        reg = new ProviderRegistry(owner, arbiter, PERIOD, SHARE_BPS, MIN_STAKE);
        vm.deal(provider, 100 ether);
    }

    function _stake(uint256 amount) internal {
        vm.prank(provider);
        reg.stake{value: amount}();
    }

    function _bonded() internal view returns (uint256 b) {
        (b,,,,) = reg.getProvider(provider);
    }

    function _unbonding() internal view returns (uint256 u) {
        (, u,,,) = reg.getProvider(provider);
    }

    // ------------------------------------------------------------ config

    function test_constructor_rejectsBadConfig() public {
        vm.expectRevert(ProviderRegistry.ZeroAddress.selector);
        new ProviderRegistry(owner, address(0), PERIOD, SHARE_BPS, MIN_STAKE);
        vm.expectRevert(ProviderRegistry.InvalidConfig.selector);
        new ProviderRegistry(owner, arbiter, PERIOD, 10_001, MIN_STAKE);
        vm.expectRevert(ProviderRegistry.InvalidConfig.selector);
        new ProviderRegistry(owner, arbiter, PERIOD, SHARE_BPS, 0);
        vm.expectRevert(ProviderRegistry.InvalidConfig.selector);
        new ProviderRegistry(owner, arbiter, uint256(type(uint32).max) + 1, SHARE_BPS, MIN_STAKE);
    }

    // ------------------------------------------------------------ staking & metadata

    function test_stake_and_metadata() public {
        vm.expectEmit(address(reg));
        emit Staked(provider, 2 ether, 2 ether);
        _stake(2 ether);
        _stake(1 ether);
        assertEq(_bonded(), 3 ether, "bonded");
        assertEq(reg.totalBonded(), 3 ether, "total");
        assertEq(address(reg).balance, 3 ether, "balance");
        assertTrue(reg.isActive(provider), "active");
        assertTrue(reg.isEligibleRecipient(provider), "eligible");

        bytes32 caps = keccak256("llama-3.2-1b-q4 gemma3-1b");
        vm.expectEmit(address(reg));
        emit MetadataUpdated(provider, "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW", caps);
        vm.prank(provider);
        reg.updateMetadata("/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW", caps);
        (,,, string memory uri, bytes32 c) = reg.getProvider(provider);
        assertEq(uri, "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW", "uri");
        assertEq(c, caps, "caps");
    }

    function test_stake_zero_reverts() public {
        vm.prank(provider);
        vm.expectRevert(ProviderRegistry.ZeroValue.selector);
        reg.stake();
    }

    function test_isActive_belowMinStake() public {
        _stake(MIN_STAKE - 1);
        assertFalse(reg.isActive(provider), "below min");
        _stake(1);
        assertTrue(reg.isActive(provider), "at min");
        vm.prank(provider);
        reg.unbond(1);
        assertFalse(reg.isActive(provider), "unbonding stake does not count");
    }

    // ------------------------------------------------------------ unbonding

    function test_unbond_delay_withdraw() public {
        _stake(5 ether);
        vm.expectEmit(address(reg));
        emit UnbondStarted(provider, 2 ether, 2 ether, block.timestamp + PERIOD);
        vm.prank(provider);
        reg.unbond(2 ether);
        assertEq(_bonded(), 3 ether, "bonded");
        assertEq(_unbonding(), 2 ether, "unbonding");

        vm.warp(block.timestamp + PERIOD - 1);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.UnbondingNotOver.selector, block.timestamp + 1));
        reg.withdrawUnbonded();

        vm.warp(block.timestamp + 1);
        uint256 before = provider.balance;
        vm.expectEmit(address(reg));
        emit UnbondedWithdrawn(provider, 2 ether);
        vm.prank(provider);
        reg.withdrawUnbonded();
        assertEq(provider.balance - before, 2 ether, "paid");
        assertEq(_unbonding(), 0, "bucket empty");
        assertEq(address(reg).balance, 3 ether, "bonded stays");

        vm.prank(provider);
        vm.expectRevert(ProviderRegistry.NothingUnbonding.selector);
        reg.withdrawUnbonded();
    }

    function test_unbond_again_restartsTimer() public {
        _stake(5 ether);
        vm.prank(provider);
        reg.unbond(1 ether);
        vm.warp(block.timestamp + PERIOD - 1);
        vm.prank(provider);
        reg.unbond(1 ether); // restarts the whole bucket
        vm.warp(block.timestamp + 1);
        vm.prank(provider);
        vm.expectRevert(
            abi.encodeWithSelector(ProviderRegistry.UnbondingNotOver.selector, block.timestamp + PERIOD - 1)
        );
        reg.withdrawUnbonded();
        vm.warp(block.timestamp + PERIOD);
        vm.prank(provider);
        reg.withdrawUnbonded();
        assertEq(_unbonding(), 0, "both withdrawn");
        assertEq(_bonded(), 3 ether, "rest bonded");
    }

    function test_unbond_errors() public {
        _stake(1 ether);
        vm.startPrank(provider);
        vm.expectRevert(ProviderRegistry.ZeroValue.selector);
        reg.unbond(0);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.InsufficientBonded.selector, 2 ether, 1 ether));
        reg.unbond(2 ether);
        vm.stopPrank();
    }

    function test_rebond() public {
        _stake(3 ether);
        vm.startPrank(provider);
        vm.expectRevert(ProviderRegistry.NothingUnbonding.selector);
        reg.rebond();
        reg.unbond(2 ether);
        vm.expectEmit(address(reg));
        emit Rebonded(provider, 2 ether, 3 ether);
        reg.rebond();
        vm.stopPrank();
        assertEq(_bonded(), 3 ether, "bonded again");
        assertEq(reg.totalUnbonding(), 0, "no unbonding");
    }

    // ------------------------------------------------------------ slashing

    function test_slash_byNonArbiter_reverts() public {
        _stake(2 ether);
        vm.prank(owner); // not even the owner may slash
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, owner));
        reg.slash(provider, 1 ether, challenger);
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, provider));
        reg.slash(provider, 1 ether, provider);
        assertEq(_bonded(), 2 ether, "untouched");
    }

    function test_slash_splitMath() public {
        _stake(4 ether);
        uint256 deadBefore = DEAD.balance;
        vm.expectEmit(address(reg));
        emit Slashed(provider, challenger, 2 ether, 2 ether, 0, 0.5 ether, 1.5 ether);
        vm.prank(arbiter);
        reg.slash(provider, 2 ether, challenger);
        assertEq(challenger.balance, 0.5 ether, "25% to the challenger");
        assertEq(DEAD.balance - deadBefore, 1.5 ether, "75% burned");
        assertEq(_bonded(), 2 ether, "bonded reduced");
        assertEq(address(reg).balance, 2 ether, "balance");
    }

    function test_slash_roundsChallengerShareDown() public {
        _stake(1 ether);
        vm.prank(arbiter);
        reg.slash(provider, 3, challenger); // 3 * 2500 / 10000 = 0.75 -> 0
        assertEq(challenger.balance, 0, "rounded down");
        vm.prank(arbiter);
        reg.slash(provider, 7, challenger); // 1.75 -> 1
        assertEq(challenger.balance, 1, "rounded down again");
    }

    function test_slash_reachesUnbondingFunds() public {
        _stake(3 ether);
        vm.prank(provider);
        reg.unbond(2 ether); // bonded 1, unbonding 2
        vm.expectEmit(address(reg));
        emit Slashed(provider, challenger, 2.5 ether, 1 ether, 1.5 ether, 0.625 ether, 1.875 ether);
        vm.prank(arbiter);
        reg.slash(provider, 2.5 ether, challenger);
        assertEq(_bonded(), 0, "bonded gone");
        assertEq(_unbonding(), 0.5 ether, "unbonding cut");
        vm.warp(block.timestamp + PERIOD);
        uint256 before = provider.balance;
        vm.prank(provider);
        reg.withdrawUnbonded();
        assertEq(provider.balance - before, 0.5 ether, "only what survived the slash");
    }

    function test_slash_moreThanStake_reverts() public {
        _stake(1 ether);
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.InsufficientStake.selector, 2 ether, 1 ether));
        reg.slash(provider, 2 ether, challenger);
        vm.prank(arbiter);
        vm.expectRevert(ProviderRegistry.ZeroValue.selector);
        reg.slash(provider, 0, challenger);
    }

    function test_slash_everything_noChallenger_burnsAll() public {
        _stake(2 ether);
        vm.prank(provider);
        reg.unbond(1 ether);
        uint256 deadBefore = DEAD.balance;
        vm.prank(arbiter);
        reg.slash(provider, 2 ether, address(0));
        assertEq(DEAD.balance - deadBefore, 2 ether, "all burned");
        assertEq(address(reg).balance, 0, "empty");
        (,, uint256 wt,,) = reg.getProvider(provider);
        assertEq(wt, 0, "emptied bucket has no timer");
    }

    function test_slash_rejectingChallenger_revertsThenBurnWorks() public {
        _stake(2 ether);
        RejectingChallenger rej = new RejectingChallenger();
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.TransferFailed.selector, address(rej), 0.25 ether));
        reg.slash(provider, 1 ether, address(rej));
        vm.prank(arbiter);
        reg.slash(provider, 1 ether, address(0));
        assertEq(_bonded(), 1 ether, "slashed once");
    }

    // ------------------------------------------------------------ roles

    function test_setArbiter_byArbiterOrOwnerOnly() public {
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiterOrOwner.selector, provider));
        reg.setArbiter(provider);

        vm.expectEmit(address(reg));
        emit ArbiterChanged(arbiter, address(0xA4B2));
        vm.prank(arbiter);
        reg.setArbiter(address(0xA4B2));
        assertEq(reg.arbiter(), address(0xA4B2), "arbiter handed on");

        vm.prank(owner);
        reg.setArbiter(arbiter);
        assertEq(reg.arbiter(), arbiter, "owner replaced it");

        vm.prank(owner);
        vm.expectRevert(ProviderRegistry.ZeroAddress.selector);
        reg.setArbiter(address(0));

        // The old arbiter can no longer slash.
        _stake(1 ether);
        vm.prank(address(0xA4B2));
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, address(0xA4B2)));
        reg.slash(provider, 1, address(0));
    }

    function test_transferOwnership_andRenounce() public {
        vm.prank(arbiter);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotOwner.selector, arbiter));
        reg.transferOwnership(arbiter);

        vm.expectEmit(address(reg));
        emit OwnershipTransferred(owner, address(0x0A12));
        vm.prank(owner);
        reg.transferOwnership(address(0x0A12));
        assertEq(reg.owner(), address(0x0A12), "new owner");

        vm.prank(address(0x0A12));
        reg.transferOwnership(address(0));
        assertEq(reg.owner(), address(0), "renounced");
        vm.prank(address(0));
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotOwner.selector, address(0)));
        reg.transferOwnership(address(0x0A13));
        vm.prank(address(0x0A12));
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiterOrOwner.selector, address(0x0A12)));
        reg.setArbiter(address(0x0A12));
    }

    // ------------------------------------------------------------ fuzz

    /// @dev Slash split: reward = floor(amount * bps / 1e4), burned = the rest, nothing lost,
    ///      bonded taken before unbonding.
    function testFuzz_slash_split(uint96 bonded, uint96 unbonding, uint96 amount, uint16 bps) public {
        bps = uint16(bound(bps, 0, 10_000));
        vm.assume(uint256(bonded) + unbonding > 0);
        reg = new ProviderRegistry(owner, arbiter, PERIOD, bps, MIN_STAKE);
        vm.deal(provider, uint256(bonded) + unbonding);
        _stake(uint256(bonded) + unbonding);
        if (unbonding > 0) {
            vm.prank(provider);
            reg.unbond(unbonding);
        }
        amount = uint96(bound(amount, 1, uint256(bonded) + unbonding));
        uint256 deadBefore = DEAD.balance;
        uint256 chBefore = challenger.balance;
        vm.prank(arbiter);
        reg.slash(provider, amount, challenger);
        uint256 reward = uint256(amount) * bps / 10_000;
        assertEq(challenger.balance - chBefore, reward, "challenger reward");
        assertEq(DEAD.balance - deadBefore, amount - reward, "burned");
        uint256 fromBonded = amount <= bonded ? amount : bonded;
        assertEq(_bonded(), bonded - fromBonded, "bonded first");
        assertEq(_unbonding(), uint256(unbonding) - (amount - fromBonded), "then unbonding");
        assertEq(address(reg).balance, reg.totalBonded() + reg.totalUnbonding(), "balance == totals");
    }

    /// @dev Unbonded funds are withdrawable exactly unbondingPeriod after the last unbond.
    function testFuzz_unbond_delay(uint96 amount, uint32 wait) public {
        vm.assume(amount > 0);
        vm.deal(provider, amount);
        _stake(amount);
        vm.prank(provider);
        reg.unbond(amount);
        vm.warp(block.timestamp + wait);
        if (wait < PERIOD) vm.expectRevert();
        vm.prank(provider);
        reg.withdrawUnbonded();
        if (wait >= PERIOD) assertEq(address(reg).balance, 0, "withdrawn");
    }

    /// @dev Only the arbiter may slash, whoever else calls.
    function testFuzz_slash_onlyArbiter(address caller) public {
        vm.assume(caller != arbiter);
        _stake(1 ether);
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSelector(ProviderRegistry.NotArbiter.selector, caller));
        reg.slash(provider, 1, caller);
    }
}

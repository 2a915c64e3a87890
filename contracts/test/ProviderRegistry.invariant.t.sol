// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test, TestBase} from "./Test.sol";
import {ProviderRegistry} from "../src/ProviderRegistry.sol";

contract RegistryHandler is TestBase {
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;

    ProviderRegistry public immutable reg;
    address public immutable arbiter;
    address[] public providers;
    address[] internal challengers;

    uint256 public ghostIn;
    uint256 public ghostWithdrawn;
    uint256 public ghostSlashed;
    uint256 public ghostRewards; // paid to challengers
    uint256 public ghostBurned; // paid to DEAD
    uint256 public ghostSplitErrors; // a slash whose split did not match the formula
    uint256 public ghostEarlyWithdrawals; // a withdrawal before the delay

    mapping(address => uint256) internal lastUnbondAt;

    constructor(ProviderRegistry r, address arbiter_) {
        reg = r;
        arbiter = arbiter_;
        for (uint256 i; i < 3; ++i) {
            providers.push(address(bytes20(keccak256(abi.encode("provider", i)))));
            challengers.push(address(bytes20(keccak256(abi.encode("challenger", i)))));
        }
        challengers.push(address(0)); // burn everything
    }

    function providerCount() external view returns (uint256) {
        return providers.length;
    }

    function stake(uint256 who, uint256 amount) external {
        address p = providers[who % providers.length];
        amount = bound(amount, 1, 50 ether);
        vm.deal(p, amount);
        vm.prank(p);
        reg.stake{value: amount}();
        ghostIn += amount;
    }

    function unbond(uint256 who, uint256 amount) external {
        address p = providers[who % providers.length];
        uint256 b = reg.bondedOf(p);
        if (b == 0) return;
        amount = bound(amount, 1, b);
        vm.prank(p);
        reg.unbond(amount);
        lastUnbondAt[p] = block.timestamp;
    }

    function rebond(uint256 who) external {
        address p = providers[who % providers.length];
        vm.prank(p);
        try reg.rebond() {} catch {}
    }

    function withdrawUnbonded(uint256 who) external {
        address p = providers[who % providers.length];
        uint256 before = p.balance;
        vm.prank(p);
        try reg.withdrawUnbonded() {
            ghostWithdrawn += p.balance - before;
            if (block.timestamp < lastUnbondAt[p] + reg.unbondingPeriod()) ++ghostEarlyWithdrawals;
        } catch {}
    }

    function slash(uint256 who, uint256 amount, uint256 ch) external {
        address p = providers[who % providers.length];
        (uint256 b, uint256 u,,,) = reg.getProvider(p);
        if (b + u == 0) return;
        amount = bound(amount, 1, b + u);
        address c = challengers[ch % challengers.length];
        uint256 cBefore = c == address(0) ? 0 : c.balance;
        uint256 dBefore = DEAD.balance;
        vm.prank(arbiter);
        reg.slash(p, amount, c);
        uint256 reward = c == address(0) ? 0 : c.balance - cBefore;
        uint256 burned = DEAD.balance - dBefore;
        uint256 expectedReward = c == address(0) ? 0 : amount * reg.challengerShareBps() / reg.BPS();
        if (reward != expectedReward || reward + burned != amount) ++ghostSplitErrors;
        ghostSlashed += amount;
        ghostRewards += reward;
        ghostBurned += burned;
    }

    function updateMetadata(uint256 who, bytes32 caps) external {
        address p = providers[who % providers.length];
        vm.prank(p);
        reg.updateMetadata("/dns4/node.example/tcp/4001", caps);
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + bound(secs, 1, 10 days));
    }
}

contract ProviderRegistryInvariantTest is Test {
    ProviderRegistry internal reg;
    RegistryHandler internal handler;
    address internal arbiter = address(0xA4B1);

    function setUp() public {
        vm.warp(1_700_000_000);
        reg = new ProviderRegistry(address(this), arbiter, 3 days, 3_333, 1 ether);
        handler = new RegistryHandler(reg, arbiter);
        targetContract(address(handler));
    }

    /// @dev The registry holds exactly the bonded plus unbonding stake of all providers.
    function invariant_balanceEqualsStake() public view {
        uint256 sum;
        for (uint256 i; i < handler.providerCount(); ++i) {
            (uint256 b, uint256 u,,,) = reg.getProvider(handler.providers(i));
            sum += b + u;
        }
        assertEq(address(reg).balance, sum, "balance == sum(bonded + unbonding)");
        assertEq(reg.totalBonded() + reg.totalUnbonding(), sum, "totals == sum");
    }

    /// @dev Money in = withdrawn + slashed + held; slashes split exactly.
    function invariant_conservationAndSplit() public view {
        assertEq(
            handler.ghostIn(),
            handler.ghostWithdrawn() + handler.ghostSlashed() + address(reg).balance,
            "staked == withdrawn + slashed + held"
        );
        assertEq(handler.ghostRewards() + handler.ghostBurned(), handler.ghostSlashed(), "slash fully paid out");
        assertEq(handler.ghostSplitErrors(), 0, "slash split formula");
    }

    /// @dev Nothing leaves before the unbonding delay.
    function invariant_noEarlyWithdrawal() public view {
        assertEq(handler.ghostEarlyWithdrawals(), 0, "withdrawal before the delay");
    }
}

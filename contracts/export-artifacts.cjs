#!/usr/bin/env node
// Copies the ABI and bytecode of the deployable contracts from forge's output
// (contracts/out) into crates/flurry-chain/artifacts, where the Rust bindings read them at
// compile time. `--check` compares instead of writing and exits 1 when they differ, so a
// contract change that was not exported fails `contracts/test.sh`.
"use strict";
const fs = require("fs");
const path = require("path");

const CONTRACTS = ["TicketBroker", "ProviderRegistry", "ModelRegistry"];
const here = __dirname;
const dest = path.join(here, "..", "crates", "flurry-chain", "artifacts");
const check = process.argv.includes("--check");

let stale = [];
for (const name of CONTRACTS) {
  const src = path.join(here, "out", `${name}.sol`, `${name}.json`);
  const full = JSON.parse(fs.readFileSync(src, "utf8"));
  const slim = {
    abi: full.abi,
    bytecode: { object: full.bytecode.object },
    deployedBytecode: { object: full.deployedBytecode.object },
  };
  const text = JSON.stringify(slim, null, 1) + "\n";
  const out = path.join(dest, `${name}.json`);
  if (check) {
    const old = fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "";
    if (old !== text) stale.push(out);
  } else {
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(out, text);
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
  }
}
if (stale.length) {
  console.error(
    "contracts changed but the Rust side's artifacts were not exported:\n  " +
      stale.join("\n  ") +
      "\nrun: node contracts/export-artifacts.cjs (after forge build), then commit them",
  );
  process.exit(1);
}

//! Integration tests of flurry-identity: known-answer vectors for addresses, EIP-191
//! and the keystore v3 format, plus file handling.

mod files;
mod identity;
mod keystore;

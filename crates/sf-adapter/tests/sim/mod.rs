//! sf-adapter against sf-sim: the adapter's real HTTP, OAuth and error handling driven by the
//! stateful simulator instead of canned wiremock answers. Proves that the client and the
//! simulator agree on the wire (both follow `salesforce-api.md`).

mod faults;
mod oauth;
mod reads;
mod support;
mod writes;

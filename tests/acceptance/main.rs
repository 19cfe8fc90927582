//! The acceptance suite: one module per SPEC section, real adapters against sf-sim.

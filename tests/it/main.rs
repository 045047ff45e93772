//! The single integration-test binary: one link step for every area, modules named
//! after the part of the system they check.

mod codec_differential;
mod codec_golden;
mod codec_properties;

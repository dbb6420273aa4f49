//! TCP states by the names the kernel and `ss` use (to be written).

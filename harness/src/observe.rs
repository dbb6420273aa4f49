//! The kernel's view of sockets (to be written).

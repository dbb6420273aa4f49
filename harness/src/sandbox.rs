//! Privileges and namespaces (to be written).

// Codec version, checked by tests/unit/smoke_test.cpp (which proves unit_tests links every
// library). Kept in step with project(VERSION) in the top-level CMakeLists.txt.
namespace pgcutover::protocol {
const char* version() {
  return "0.1.0";
}
}  // namespace pgcutover::protocol

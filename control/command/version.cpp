// Marker so the library is never empty while the tree grows.
namespace pgcutover::control {
const char* version() {
  return "0.1.0";
}
}  // namespace pgcutover::control

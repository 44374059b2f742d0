// pgcutover-proxy entry point (placeholder until the data-plane issue lands).
#include <cstdio>
int main() {
  std::puts("pgcutover-proxy: not built yet");
  return 0;
}

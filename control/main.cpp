// pgcutoverctl entry point (placeholder until the control issues land).
#include <cstdio>
int main() {
  std::puts("pgcutoverctl: not built yet");
  return 0;
}

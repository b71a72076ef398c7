// Line protocol on stdin: "F <table index> <double bits, hex>" or "C <table index> <source mantissa>".
// One line "<raw bits hex> <to_double bits hex>" per case on stdout.
#include <cstdio>

#include "fixed_harness.h"

extern const FromDouble FROM_DOUBLE[];
extern const int N_FROM_DOUBLE;
extern const FromFixed FROM_FIXED[];
extern const int N_FROM_FIXED;

int main() {
  char kind;
  int k;
  while (std::scanf(" %c %d", &kind, &k) == 2) {
    Result r;
    if (kind == 'F') {
      unsigned long long bits;
      if (std::scanf("%llx", &bits) != 1 || k < 0 || k >= N_FROM_DOUBLE) return 2;
      r = FROM_DOUBLE[k](bits);
    } else if (kind == 'C') {
      long long m;
      if (std::scanf("%lld", &m) != 1 || k < 0 || k >= N_FROM_FIXED) return 2;
      r = FROM_FIXED[k](m);
    } else {
      return 2;
    }
    std::printf("%llx %llx\n", r.raw, r.dbits);
  }
  return 0;
}

// Reference conversions for tests/test_fixed.py, instantiated from the ap_types headers hls4ml ships.
// test_fixed.py generates the type tables (one function pointer per target type / source-target
// pair) and compiles them with fixed_harness_main.cpp; every result is printed as raw bits.
#pragma once
#include <ap_fixed.h>

#include <cstring>

struct Result {
  unsigned long long raw;    // the target's W bits (masked and sign-extended by the test)
  unsigned long long dbits;  // bits of v.to_double()
};
typedef Result (*FromDouble)(unsigned long long double_bits);
typedef Result (*FromFixed)(long long source_mantissa);

template <class T>
Result pack(const T& v) {
  Result r;
  r.raw = (unsigned long long)v.V.to_uint64();
  double d = v.to_double();
  std::memcpy(&r.dbits, &d, sizeof d);
  return r;
}

// `T v = x;` with x a double: ap_fixed_base(double).
template <class T>
Result from_double(unsigned long long bits) {
  double x;
  std::memcpy(&x, &bits, sizeof x);
  T v = x;
  return pack(v);
}

// `T v = s;` with s an ap_fixed of another type: ap_fixed_base::operator=(const ap_fixed_base<...>&).
template <class S, class T>
Result from_fixed(long long m) {
  S s;
  s.setBits((unsigned long long)m);
  T v = s;
  return pack(v);
}

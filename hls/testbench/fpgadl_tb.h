// fpgadl's check inside hls4ml's test bench (myproject_test.cpp): every output of every sample is compared,
// bit for bit, with the fast engine's value in tb_data/tb_output_predictions.dat (written by fpgadl as
// float32 with 9 significant digits, so each parses back to the exact float). The same test bench runs in
// C simulation (g++ or the vendor's csim) and in RTL co-simulation; main() returns nonzero on any mismatch,
// which the vendor tool reports as a failed simulation.
#ifndef FPGADL_TB_H_
#define FPGADL_TB_H_

#include <cstdio>
#include <vector>

#include "hls_stream.h"

namespace fpgadl {

static long n_checked = 0;
static long n_mismatch = 0;
static int n_samples = 0;

template <class value_T> inline void check_value(const value_T &got, const std::vector<float> &expected, unsigned i,
                                                 int sample) {
    n_checked++;
    const float value = got.to_float(); // what hls4ml's bridge (csim predict) returns
    if (i >= expected.size() || value != expected[i]) {
        if (n_mismatch < 10)
            std::printf("fpgadl: MISMATCH sample %d output %u: firmware %.9g, fast engine %.9g\n", sample, i,
                        value, i < expected.size() ? expected[i] : 0.0f);
        n_mismatch++;
    }
}

// io_parallel: the output port is an array
template <class res_T, unsigned SIZE> void check(res_T result[SIZE], const std::vector<float> &expected, int sample) {
    n_samples = sample + 1;
    for (unsigned i = 0; i < SIZE; i++)
        check_value(result[i], expected, i, sample);
}

// io_stream: read every packet and write it back, so hls4ml's own printing still sees the output
template <class res_T, unsigned SIZE>
void check(hls::stream<res_T> &result, const std::vector<float> &expected, int sample) {
    n_samples = sample + 1;
    for (unsigned i = 0; i < SIZE / res_T::size; i++) {
        res_T pack = result.read();
        for (unsigned j = 0; j < res_T::size; j++)
            check_value(pack[j], expected, i * res_T::size + j, sample);
        result.write(pack);
    }
}

inline int report() {
    std::printf("fpgadl: %ld outputs of %d samples compared with the fast engine: %ld mismatches\n", n_checked,
                n_samples, n_mismatch);
    return (n_mismatch == 0 && n_checked > 0) ? 0 : 1;
}

} // namespace fpgadl

#endif

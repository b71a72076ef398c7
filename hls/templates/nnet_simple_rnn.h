// fpgadl's SimpleRNN (Elman) layer for hls4ml's Vivado/Vitis backends, io_parallel.
//
// hls4ml 1.3 parses SimpleRNN (Keras, PyTorch nn.RNN) but ships no Vivado/Vitis template for it; fpgadl
// registers this header and its config/function templates (fpgadl/hls/simple_rnn.py) into the backends.
// Per time step, with the state h starting at zero for every sample:
//     tmpres       = (accum_t) W_x x + b        (nnet::dense into accum_t, mult_config1)
//     tmpres_state = (accum_t) W_h h + b_h      (nnet::dense into accum_t, mult_config2; b_h: PyTorch's bias_hh)
//     inputacc     = tmpres + tmpres_state      (assigned to accum_t)
//     h            = (res_T) activation(inputacc)   (activation: accum_t -> accum_t; the tanh table)
// The same arithmetic rules as hls4ml's GRU/LSTM (nnet_recurrent.h); fpgadl/emulator/kernels_rnn.py is its
// bit-exact numpy twin. The state lives in the stack function, not in a static variable, so a call never
// sees the previous call's state.
#ifndef FPGADL_NNET_SIMPLE_RNN_H_
#define FPGADL_NNET_SIMPLE_RNN_H_

#include "nnet_activation.h"
#include "nnet_common.h"
#include "nnet_dense.h"
#include "nnet_recr_activations.h"

namespace nnet {

struct simple_rnn_config {
    typedef float weight_t;
    typedef float recurrent_weight_t;
    typedef float bias_t;
    typedef float recurrent_bias_t;
    typedef float accum_t;

    static const unsigned n_in = 2;
    static const unsigned n_out = 2;
    static const unsigned n_state = 2;
    static const unsigned n_sequence = 2;
    static const unsigned n_sequence_out = 1;
    static const unsigned io_type = io_parallel;
    static const unsigned reuse_factor = 1;
    static const bool store_weights_in_bram = false;

    template <class x_T, class y_T, class config_T> using activation = nnet::activation::tanh<x_T, y_T, config_T>;
};

// One time step: h_state <- (res_T) activation(W_x data + b + W_h h_state + b_h).
template <class data_T, class res_T, typename CONFIG_T>
void simple_rnn_step(data_T data[CONFIG_T::n_in], res_T h_state[CONFIG_T::n_state],
                     typename CONFIG_T::weight_t param[CONFIG_T::n_state * CONFIG_T::n_in],
                     typename CONFIG_T::recurrent_weight_t param_r[CONFIG_T::n_state * CONFIG_T::n_state],
                     typename CONFIG_T::bias_t param_b[CONFIG_T::n_state],
                     typename CONFIG_T::recurrent_bias_t param_br[CONFIG_T::n_state]) {
    typename CONFIG_T::accum_t tmpres[CONFIG_T::n_state];
    typename CONFIG_T::accum_t tmpres_state[CONFIG_T::n_state];
    typename CONFIG_T::accum_t inputacc[CONFIG_T::n_state];
    typename CONFIG_T::accum_t tmpres_h[CONFIG_T::n_state];
    #pragma HLS ARRAY_PARTITION variable=tmpres       complete
    #pragma HLS ARRAY_PARTITION variable=tmpres_state complete
    #pragma HLS ARRAY_PARTITION variable=inputacc     complete
    #pragma HLS ARRAY_PARTITION variable=tmpres_h     complete

    nnet::dense<data_T, typename CONFIG_T::accum_t, typename CONFIG_T::mult_config1>(data, tmpres, param, param_b);
    nnet::dense<res_T, typename CONFIG_T::accum_t, typename CONFIG_T::mult_config2>(h_state, tmpres_state, param_r,
                                                                                    param_br);
    for (int i = 0; i < CONFIG_T::n_state; i++) {
        #pragma HLS UNROLL
        inputacc[i] = tmpres[i] + tmpres_state[i];
    }
    CONFIG_T::template activation<typename CONFIG_T::accum_t, typename CONFIG_T::accum_t,
                                  typename CONFIG_T::ACT_CONFIG_T>::activation(inputacc, tmpres_h);
    for (int i = 0; i < CONFIG_T::n_state; i++) {
        #pragma HLS UNROLL
        h_state[i] = (res_T)tmpres_h[i]; // the state takes res_T's own rounding and overflow modes
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void simple_rnn_stack(data_T data[CONFIG_T::n_sequence * CONFIG_T::n_in],
                      res_T res[CONFIG_T::n_sequence_out * CONFIG_T::n_state],
                      typename CONFIG_T::weight_t param[CONFIG_T::n_state * CONFIG_T::n_in],
                      typename CONFIG_T::recurrent_weight_t param_r[CONFIG_T::n_state * CONFIG_T::n_state],
                      typename CONFIG_T::bias_t param_b[CONFIG_T::n_state],
                      typename CONFIG_T::recurrent_bias_t param_br[CONFIG_T::n_state]) {
    res_T h_state[CONFIG_T::n_state];
    data_T data_in[CONFIG_T::n_in];
    #pragma HLS ARRAY_PARTITION variable=h_state complete
    #pragma HLS ARRAY_PARTITION variable=data_in complete

    for (int i = 0; i < CONFIG_T::n_state; i++) {
        #pragma HLS UNROLL
        h_state[i] = 0;
    }
    for (int t = 0; t < CONFIG_T::n_sequence; t++) {
        for (int j = 0; j < CONFIG_T::n_in; j++) {
            #pragma HLS UNROLL
            data_in[j] = data[j + t * CONFIG_T::n_in];
        }
        simple_rnn_step<data_T, res_T, CONFIG_T>(data_in, h_state, param, param_r, param_b, param_br);
        if (CONFIG_T::n_sequence_out > 1) {
            for (int i = 0; i < CONFIG_T::n_state; i++) {
                #pragma HLS UNROLL
                res[t * CONFIG_T::n_state + i] = h_state[i];
            }
        }
    }
    if (CONFIG_T::n_sequence_out == 1) {
        for (int i = 0; i < CONFIG_T::n_state; i++) {
            #pragma HLS UNROLL
            res[i] = h_state[i];
        }
    }
}

} // namespace nnet

#endif

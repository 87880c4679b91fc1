// matvec_f16_f32: the matvec body (`wgsl/matvec_body.wgsl`) over a row-major f16 W.
#include "matmul_common.wgsl"
#storage_f16 5 w read
// w: [M_block, K] f16, row-major
#include "matvec_body.wgsl"

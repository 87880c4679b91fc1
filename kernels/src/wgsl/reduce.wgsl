// Workgroup tree reduction over `red_buf`. Include after declaring
// `const RED_N: u32` (a power of two = workgroup size) and calling from all invocations.
var<workgroup> red_buf: array<f32, RED_N>;

// Sum of `v` over the workgroup; every invocation receives the total.
fn reduce_sum(lid: u32, v: f32) -> f32 {
    red_buf[lid] = v;
    workgroupBarrier();
    for (var s = RED_N / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_buf[lid] = red_buf[lid] + red_buf[lid + s];
        }
        workgroupBarrier();
    }
    let total = red_buf[0];
    workgroupBarrier();
    return total;
}

// Max of `v` over the workgroup; every invocation receives the maximum.
fn reduce_max(lid: u32, v: f32) -> f32 {
    red_buf[lid] = v;
    workgroupBarrier();
    for (var s = RED_N / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            red_buf[lid] = max(red_buf[lid], red_buf[lid + s]);
        }
        workgroupBarrier();
    }
    let total = red_buf[0];
    workgroupBarrier();
    return total;
}

// Workgroup-id folding: dispatches wider than 65,535 workgroups are folded into 2-D by the host
// (x = min(n, 65535), y = ceil(n / x)); kernels recover the linear id with `linear_wg`.
fn linear_wg(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

// Launcher of the fused CUDA top-k search (csrc/cuda/topk.cu): host side, no pybind11.
#pragma once
#include <cstdint>

namespace infercore {
namespace cuda {

// Bytes of device workspace topk_launch needs for these sizes on the current device (the
// caller allocates it with its own allocator, on its stream). ctype: 0 float32, 1 float16,
// 2 int8. max_workspace: soft bound; the work is split into query groups to stay under it.
int64_t topk_workspace_bytes(int64_t Q, int64_t N, int64_t d, int64_t k, int ctype, int64_t max_workspace);

// queries float32 [Q,d]; corpus [N,d] of ctype; scale float32 [N] or 0 (int8 inner product
// needs it); mask uint8 [N] or 0; out_scores float32 [Q,k], out_ids int64 [Q,k]. All device
// pointers on the current device, C-contiguous. Throws std::invalid_argument on bad arguments.
void topk_launch(uintptr_t queries, int64_t Q, int64_t d, uintptr_t corpus, int64_t N, int ctype,
                 uintptr_t scale, uintptr_t mask, bool cosine, int64_t k, uintptr_t out_scores,
                 uintptr_t out_ids, uintptr_t workspace, int64_t workspace_bytes, int64_t max_workspace,
                 uintptr_t stream);

}  // namespace cuda
}  // namespace infercore

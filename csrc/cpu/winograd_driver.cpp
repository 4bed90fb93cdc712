// 3x3 stride-1 float32 convolutions by Winograd F(4x4, 3x3) (kernels in winograd.cpp): each
// 4x4 output tile costs 36 multiply-adds per channel pair instead of 144. The products of the
// transformed tiles are 36 GEMMs over channels, run on the GEMM micro-kernel, one block of
// tiles at a time so that a block's transformed input and products stay in cache.
#include "winograd_driver.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace fk {
namespace {

constexpr int64_t L = kWinoLanes;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// The tiles of a convolution whose output is [N, K, Ho, Wo], reading a blocked input
// [N, ceil(C/L), Hp, Wp, L] padded so that every tile's 6x6 patch lies inside it.
struct Tiling {
  int64_t N, C, K, Ho, Wo, Th, Tw, Hp, Wp, Cb;
  std::vector<WinoTile> tiles;
  Tiling(int64_t N_, int64_t C_, int64_t K_, int64_t Ho_, int64_t Wo_)
      : N(N_),
        C(C_),
        K(K_),
        Ho(Ho_),
        Wo(Wo_),
        Th((Ho + 3) / 4),
        Tw((Wo + 3) / 4),
        Hp(4 * Th + 2),
        Wp(4 * Tw + 2),
        Cb((C + L - 1) / L) {
    tiles.reserve(size_t(N * Th * Tw));
    for (int64_t n = 0; n < N; n++)
      for (int64_t th = 0; th < Th; th++)
        for (int64_t tw = 0; tw < Tw; tw++)
          tiles.push_back({(n * Cb * Hp + 4 * th) * Wp * L + 4 * tw * L, (n * K * Ho + 4 * th) * Wo + 4 * tw,
                           int(std::min<int64_t>(4, Ho - 4 * th)), int(std::min<int64_t>(4, Wo - 4 * tw))});
  }
  int64_t P() const { return int64_t(tiles.size()); }
  int64_t cb_step() const { return Hp * Wp * L; }
};

// x [N, C, H, W] as the blocked input of `t`, zero-padded by (top, left) and up to the tiles' extent.
Tensor blocked_input(const Tiling& t, const float* x, int64_t H, int64_t W, int64_t top, int64_t left) {
  const Tensor xb = empty({t.N * t.Cb * t.cb_step()}, DType::Float32);
  float* dst = xb.data<float>();
  parallel_for(t.N, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; n++)
      cpu_kernels().winograd->to_blocked(t.C, H, W, x + n * t.C * H * W, t.Hp, t.Wp, top, left,
                                         dst + n * t.Cb * t.cb_step());
  });
  return xb;
}

// Tiles per block: a multiple of the micro-kernel's rows, with the block's transformed
// input (36 values per tile and channel) near 256 KB.
int64_t block_tiles(int64_t C, int64_t mr) {
  return mr * std::clamp<int64_t>((int64_t(256) << 10) / (36 * round_up(C, L) * 4 * mr), 1, 8);
}

// Runs f(block, b0, nt) over the blocks of P tiles, the blocks across threads when they
// divide evenly among them (else one at a time, each splitting its own work across threads).
template <class F>
void for_blocks(int64_t P, int64_t TB, const F& f) {
  const int64_t blocks = (P + TB - 1) / TB;
  auto body = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) f(i, i * TB, std::min(TB, P - i * TB));
  };
  if (num_threads() > 1 && evenness(blocks, num_threads()) >= kMinEvenness)
    parallel_for(blocks, 1, body);
  else
    body(0, blocks);
}

// out [N, K, Ho, Wo] = the convolution of the blocked input xb of `t` with the filters whose
// transform (GEMM B panels of width nr) is u.
void winograd_conv(const Tiling& t, const float* xb, const float* u, float* out) {
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  const WinogradKernels& wk = *cpu_kernels().winograd;
  const int64_t Cpad = t.Cb * L, Kpad = round_up(t.K, mk.nr), TB = block_tiles(t.C, mk.mr);
  const int64_t u_xi = Kpad * t.C, plane = t.Ho * t.Wo;
  std::vector<int64_t> voff(size_t(t.Cb));
  for (int64_t cb = 0; cb < t.Cb; cb++) voff[size_t(cb)] = cb * L;
  for_blocks(t.P(), TB, [&](int64_t, int64_t b0, int64_t nt) {
    // v [36][TB][Cpad]: a GEMM A operand with the tiles as rows; m [TB][36][Kpad].
    const Tensor vbuf = empty({36 * TB * Cpad}, DType::Float32), mbuf = empty({TB * 36 * Kpad}, DType::Float32);
    float* v = vbuf.data<float>();
    float* m = mbuf.data<float>();
    const WinoTile* tiles = t.tiles.data() + b0;
    parallel_for(nt, 4, [&](int64_t i, int64_t e) {
      wk.input(e - i, tiles + i, t.Cb, t.cb_step(), t.Wp * L, xb, v + i * Cpad, TB * Cpad, Cpad, voff.data());
    });
    const int64_t rows = (nt + mk.mr - 1) / mk.mr, panels = Kpad / mk.nr;
    parallel_for(36 * panels * rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; j++) {  // j = (xi*panels + p)*rows + r: a panel's rows run together
        const int64_t r = j % rows, p = j / rows % panels, xi = j / rows / panels, i0 = r * mk.mr;
        mk.run(t.C, v + (xi * TB + i0) * Cpad, Cpad, 1, nullptr, u + xi * u_xi + p * t.C * mk.nr,
               m + (i0 * 36 + xi) * Kpad + p * mk.nr, 36 * Kpad, int(std::min<int64_t>(mk.mr, nt - i0)),
               int(std::min<int64_t>(mk.nr, t.K - p * mk.nr)), false);
      }
    });
    parallel_for(nt, 1, [&](int64_t i, int64_t e) {
      wk.output(e - i, tiles + i, m + i * 36 * Kpad, 36 * Kpad, Kpad, t.K, t.Wo, plane, out);
    });
  });
}

// The transformed filters g(o, i) = w[o*so + i*si + r*sr + s*ss] for the output channels o < O.
Tensor transform_filters(int64_t O, int64_t I, const float* w, int64_t so, int64_t si, int64_t sr, int64_t ss) {
  const int64_t nr = cpu_kernels().gemm_f32->wide.nr, Opad = round_up(O, nr);
  const Tensor u = empty({36 * Opad * I}, DType::Float32);
  float* dst = u.data<float>();
  parallel_for((O + L - 1) / L, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b * L; o < e * L; o += L)  // one block of output channels at a time: within one panel
      cpu_kernels().winograd->weight(std::min(L, O - o), I, w + o * so, so, si, sr, ss, nr,
                                     dst + o / nr * I * nr + o % nr, Opad * I);
  });
  return u;
}

}  // namespace

bool winograd_applies(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups) {
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  return x.dtype() == DType::Float32 && groups == 1 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 &&
         g.dw == 1 && g.ph <= 2 && g.pw <= 2 && mk.nr % L == 0 && w.size(0) > 0 && x.size(1) > 0;
}

void winograd_forward(const Tensor& X, const Tensor& W, const Window2d& g, const Tensor& out) {
  const int64_t N = X.size(0), C = X.size(1), K = W.size(0);
  const Tiling t(N, C, K, g.Ho, g.Wo);
  const Tensor xb = blocked_input(t, X.data<float>(), g.H, g.W, g.ph, g.pw);
  const Tensor u = transform_filters(K, C, W.data<float>(), C * 9, 9, 3, 1);
  winograd_conv(t, xb.data<float>(), u.data<float>(), out.data<float>());
}

void winograd_backward(const Tensor& X, const Tensor& W, const Tensor& G, const Window2d& g, const Tensor& dx,
                       const Tensor& dw) {
  const int64_t N = X.size(0), C = X.size(1), K = W.size(0);
  if (dx.defined()) {
    // dx is the convolution of G, padded by 2 - p, with the filters flipped and transposed:
    // g'(c, k, r, s) = w(k, c, 2 - r, 2 - s).
    const Tiling t(N, K, C, g.H, g.W);
    const Tensor gb = blocked_input(t, G.data<float>(), g.Ho, g.Wo, 2 - g.ph, 2 - g.pw);
    const Tensor u = transform_filters(C, K, W.data<float>() + 8, 9, C * 9, -3, -1);
    winograd_conv(t, gb.data<float>(), u.data<float>(), dx.data<float>());
  }
  if (!dw.defined()) return;
  // dw = G^T [sum over tiles of (A dy A^T) * (B^T d B)] G: per transformed position xi, the
  // product of the tiles' output gradients (K x tiles) and transformed inputs (tiles x C),
  // summed block after block in a fixed order whatever the thread count.
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  const WinogradKernels& wk = *cpu_kernels().winograd;
  const Tiling t(N, C, K, g.Ho, g.Wo);
  if (t.P() == 0) {
    std::memset(dw.raw(), 0, size_t(dw.numel()) * sizeof(float));
    return;
  }
  const Tensor xb = blocked_input(t, X.data<float>(), g.H, g.W, g.ph, g.pw);
  const int64_t Kpad = round_up(K, L), Cpp = round_up(C, mk.nr), TB = block_tiles(C, mk.mr), nr = mk.nr;
  std::vector<int64_t> voff(size_t(t.Cb));  // v [36][C/nr panels][TB][nr]: GEMM B panels
  for (int64_t cb = 0; cb < t.Cb; cb++) voff[size_t(cb)] = cb * L / nr * TB * nr + cb * L % nr;
  const Tensor du = empty({36 * K * Cpp}, DType::Float32), vbuf = empty({36 * Cpp * TB}, DType::Float32),
               mbuf = empty({36 * TB * Kpad}, DType::Float32);  // m [36][TB][Kpad]: the A operand, transposed
  float *v = vbuf.data<float>(), *m = mbuf.data<float>(), *u = du.data<float>();
  const int64_t rows = (K + mk.mr - 1) / mk.mr, panels = Cpp / nr;
  for (int64_t b0 = 0; b0 < t.P(); b0 += TB) {
    const int64_t nt = std::min(TB, t.P() - b0);
    const WinoTile* tiles = t.tiles.data() + b0;
    parallel_for(nt, 4, [&](int64_t i, int64_t e) {
      wk.input(e - i, tiles + i, t.Cb, t.cb_step(), t.Wp * L, xb.data<float>(), v + i * nr, Cpp * TB, nr, voff.data());
      wk.output_adjoint(e - i, tiles + i, G.data<float>(), K, g.Wo, g.Ho * g.Wo, m + i * Kpad, Kpad, TB * Kpad);
    });
    parallel_for(36 * rows * panels, 1, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; j++) {
        const int64_t p = j % panels, r = j / panels % rows, xi = j / panels / rows, k0 = r * mk.mr;
        mk.run(nt, m + xi * TB * Kpad + k0, 1, Kpad, nullptr, v + (xi * panels + p) * TB * nr,
               u + (xi * K + k0) * Cpp + p * nr, Cpp, int(std::min<int64_t>(mk.mr, K - k0)),
               int(std::min(nr, C - p * nr)), b0 > 0);
      }
    });
  }
  parallel_for(K, 1, [&](int64_t b, int64_t e) {
    wk.weight_adjoint(e - b, C, u + b * Cpp, K * Cpp, Cpp, dw.data<float>() + b * C * 9, C * 9, 9);
  });
}

}  // namespace fk

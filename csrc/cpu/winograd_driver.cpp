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

// The filters as the Winograd route reads them: output channel o and input channel i at
// w[o*so + i*si + r*sr + s*ss] (so the backward's flipped, transposed filters are a view).
struct Filters {
  const float* w;
  int64_t O, I, so, si, sr, ss;
  // Output channels [p*nr, p*nr + nr), transformed into one GEMM B panel [36][I][nr].
  void panel(int64_t p, int64_t nr, float* u) const {
    cpu_kernels().winograd->weight(std::min(nr, O - p * nr), I, w + p * nr * so, so, si, sr, ss, nr, u, I * nr);
  }
};

// A layer whose transformed filters (four times the size of the filters) are at least half
// the size of its transformed tiles (inputs and products), and those fit in this much memory,
// runs as one block with the filters transformed panel by panel as they are used: a layer
// with few tiles and many channels (ResNet's 512-channel 7x7 at batch 8) then never writes
// out all its transformed filters. Also the tiles per chunk of the weight gradient.
constexpr int64_t kLayerBytes = int64_t(16) << 20;

// Up to this size, the weight gradient's sums over tiles stay whole (see winograd_backward),
// in this many partial sums.
constexpr int64_t kWholeSums = int64_t(4) << 20, kSumGroups = 4;

// Tiles per block when a layer is larger: a multiple of the micro-kernel's rows, with the
// block's transformed input (36 values per tile and channel) near 256 KB.
int64_t block_tiles(int64_t C, int64_t mr) {
  return mr * std::clamp<int64_t>((int64_t(256) << 10) / (36 * round_up(C, L) * 4 * mr), 1, 8);
}

// m [nt][36][Kpad] = the products of a block's transformed input v [36][TB][Cpad] (tiles as
// rows) with the panels [ps, pe) of transformed filters, panel p at u(p) [36][C][nr].
template <class U>
void products(const Tiling& t, int64_t nt, int64_t TB, const float* v, int64_t ps, int64_t pe, const U& u, float* m) {
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  const int64_t Cpad = t.Cb * L, Kpad = round_up(t.K, mk.nr);
  for (int64_t p = ps; p < pe; p++) {
    const float* up = u(p);
    for (int64_t xi = 0; xi < 36; xi++)
      for (int64_t i0 = 0; i0 < nt; i0 += mk.mr)
        mk.run(t.C, v + (xi * TB + i0) * Cpad, Cpad, 1, nullptr, up + xi * t.C * mk.nr,
               m + (i0 * 36 + xi) * Kpad + p * mk.nr, 36 * Kpad, int(std::min<int64_t>(mk.mr, nt - i0)),
               int(std::min<int64_t>(mk.nr, t.K - p * mk.nr)), false);
  }
}

// out [N, K, Ho, Wo] = the convolution of the blocked input xb of `t` with the filters f.
void winograd_conv(const Tiling& t, const float* xb, const Filters& f, float* out) {
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  const WinogradKernels& wk = *cpu_kernels().winograd;
  const int64_t Cpad = t.Cb * L, Kpad = round_up(t.K, mk.nr), panels = Kpad / mk.nr, plane = t.Ho * t.Wo;
  const int64_t tile_bytes = 36 * t.P() * (Cpad + Kpad) * 4;
  const bool whole = tile_bytes <= kLayerBytes && 2 * 36 * t.C * Kpad * 4 >= tile_bytes;
  const int64_t TB = whole ? t.P() : block_tiles(t.C, mk.mr);
  std::vector<int64_t> voff(size_t(t.Cb));
  for (int64_t cb = 0; cb < t.Cb; cb++) voff[size_t(cb)] = cb * L;
  // All the filters transformed once, for a layer run in blocks.
  const Tensor ubuf = whole ? Tensor() : empty({36 * Kpad * t.C}, DType::Float32);
  if (!whole)
    parallel_for(panels, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; p++) f.panel(p, mk.nr, ubuf.data<float>() + p * 36 * t.C * mk.nr);
    });
  // Blocks of tiles, across threads when they divide evenly among them (see parallel_for_even).
  auto block = [&](int64_t b0, int64_t nt) {
    const Tensor vbuf = empty({36 * TB * Cpad}, DType::Float32), mbuf = empty({TB * 36 * Kpad}, DType::Float32);
    float* v = vbuf.data<float>();
    float* m = mbuf.data<float>();
    const WinoTile* tiles = t.tiles.data() + b0;
    parallel_for(nt, 4, [&](int64_t i, int64_t e) {
      wk.input(e - i, tiles + i, t.Cb, t.cb_step(), t.Wp * L, xb, v + i * Cpad, TB * Cpad, Cpad, voff.data());
    });
    parallel_for(panels, 1, [&](int64_t ps, int64_t pe) {
      if (whole) {  // each thread transforms the panels it uses
        const Tensor u = empty({36 * t.C * mk.nr}, DType::Float32);
        products(
            t, nt, TB, v, ps, pe,
            [&](int64_t p) {
              f.panel(p, mk.nr, u.data<float>());
              return u.data<float>();
            },
            m);
      } else {
        products(t, nt, TB, v, ps, pe, [&](int64_t p) { return ubuf.data<float>() + p * 36 * t.C * mk.nr; }, m);
      }
    });
    parallel_for(nt, 1, [&](int64_t i, int64_t e) {
      wk.output(e - i, tiles + i, m + i * 36 * Kpad, 36 * Kpad, Kpad, t.K, t.Wo, plane, out);
    });
  };
  parallel_for_even((t.P() + TB - 1) / TB, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) block(i * TB, std::min(TB, t.P() - i * TB));
  });
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
  winograd_conv(t, xb.data<float>(), {W.data<float>(), K, C, C * 9, 9, 3, 1}, out.data<float>());
}

void winograd_backward(const Tensor& X, const Tensor& W, const Tensor& G, const Window2d& g, const Tensor& dx,
                       const Tensor& dw) {
  const int64_t N = X.size(0), C = X.size(1), K = W.size(0);
  if (dx.defined()) {
    // dx is the convolution of G, padded by 2 - p, with the filters flipped and transposed:
    // g'(c, k, r, s) = w(k, c, 2 - r, 2 - s).
    const Tiling t(N, K, C, g.H, g.W);
    const Tensor gb = blocked_input(t, G.data<float>(), g.Ho, g.Wo, 2 - g.ph, 2 - g.pw);
    winograd_conv(t, gb.data<float>(), {W.data<float>() + 8, C, K, 9, C * 9, -3, -1}, dx.data<float>());
  }
  if (!dw.defined()) return;
  // dw = G^T [sum over tiles of (A dy A^T) * (B^T d B)] G: per transformed position xi, the
  // product of the tiles' output gradients (K x tiles) and transformed inputs (tiles x C),
  // over a chunk of tiles at a time, chunks added in order (the same sums whatever the
  // thread count). Small layers keep the sums du [36][K][Cpp] whole, in cache, across the
  // chunks and turn them into filters at the end; larger ones take a few output channels
  // and one panel of input channels at a time through all 36 products and back to filters,
  // so that du is never written out whole.
  const GemmMicroKernel& mk = cpu_kernels().gemm_f32->wide;
  const WinogradKernels& wk = *cpu_kernels().winograd;
  const Tiling t(N, C, K, g.Ho, g.Wo);
  if (t.P() == 0) {
    std::memset(dw.raw(), 0, size_t(dw.numel()) * sizeof(float));
    return;
  }
  const Tensor xb = blocked_input(t, X.data<float>(), g.H, g.W, g.ph, g.pw);
  const Tiling tg(N, K, C, g.Ho, g.Wo);  // the output gradient, blocked the same way (tile for tile)
  const Tensor gb = blocked_input(tg, G.data<float>(), g.Ho, g.Wo, 0, 0);
  const int64_t nr = mk.nr, Kpad = round_up(K, L), Cpp = round_up(C, nr), panels = Cpp / nr;
  const int64_t rows = (K + mk.mr - 1) / mk.mr;
  const bool whole = 36 * K * Cpp * 4 <= kWholeSums;
  const int64_t PC =
      whole ? block_tiles(C, mk.mr) : std::clamp<int64_t>(kLayerBytes / (36 * (Kpad + Cpp) * 4), 1, t.P());
  // v [36][panels][PC][nr]: GEMM B panels; m [36][PC][Kpad]: the A operand, transposed.
  std::vector<int64_t> voff(size_t(t.Cb));
  for (int64_t cb = 0; cb < t.Cb; cb++) voff[size_t(cb)] = cb * L / nr * PC * nr + cb * L % nr;
  auto buffers = [&] {
    return std::pair{empty({36 * Cpp * PC}, DType::Float32), empty({36 * PC * Kpad}, DType::Float32)};
  };
  // The transformed input and output gradient of tiles [b0, b0 + nt) into v and m.
  auto transform = [&](int64_t b0, int64_t nt, float* v, float* m) {
    parallel_for(nt, 4, [&](int64_t i, int64_t e) {
      wk.input(e - i, t.tiles.data() + b0 + i, t.Cb, t.cb_step(), t.Wp * L, xb.data<float>(), v + i * nr, Cpp * PC, nr,
               voff.data());
      wk.output_adjoint(e - i, tg.tiles.data() + b0 + i, tg.Cb, tg.cb_step(), tg.Wp * L, gb.data<float>(), m + i * Kpad,
                        Kpad, PC * Kpad);
    });
  };
  // du (+)= the products over nt tiles for output channels [k0, k0 + mr) and input-channel panel p at xi.
  auto product = [&](int64_t nt, const float* v, const float* m, int64_t xi, int64_t k0, int64_t p, float* du,
                     int64_t ldu, bool acc) {
    mk.run(nt, m + xi * PC * Kpad + k0, 1, Kpad, nullptr, v + (xi * panels + p) * PC * nr, du, ldu,
           int(std::min<int64_t>(mk.mr, K - k0)), int(std::min(nr, C - p * nr)), acc);
  };
  if (whole) {
    // The chunks fall into a fixed number of groups (whatever the thread count), each summed
    // into its own du by one thread; the groups' sums then add up in order.
    const int64_t chunks = (t.P() + PC - 1) / PC, groups = std::min(kSumGroups, chunks), S = 36 * K * Cpp;
    const Tensor sums = empty({groups * S}, DType::Float32);
    float* u = sums.data<float>();
    parallel_for(groups, 1, [&](int64_t gb0, int64_t ge) {
      const auto [vbuf, mbuf] = buffers();
      for (int64_t gi = gb0; gi < ge; gi++)
        for (int64_t c = gi * chunks / groups; c < (gi + 1) * chunks / groups; c++) {
          const int64_t b0 = c * PC, nt = std::min(PC, t.P() - b0);
          const bool acc = c > gi * chunks / groups;
          transform(b0, nt, vbuf.data<float>(), mbuf.data<float>());
          for (int64_t xi = 0; xi < 36; xi++)
            for (int64_t k0 = 0; k0 < K; k0 += mk.mr)
              for (int64_t p = 0; p < panels; p++)
                product(nt, vbuf.data<float>(), mbuf.data<float>(), xi, k0, p,
                        u + gi * S + (xi * K + k0) * Cpp + p * nr, Cpp, acc);
        }
    });
    parallel_for(S, 4096, [&](int64_t b, int64_t e) {
      for (int64_t gi = 1; gi < groups; gi++)
        for (int64_t i = b; i < e; i++) u[i] += u[gi * S + i];
    });
    parallel_for(K, 1, [&](int64_t b, int64_t e) {
      wk.weight_adjoint(e - b, C, u + b * Cpp, K * Cpp, Cpp, dw.data<float>() + b * C * 9, C * 9, 9, false);
    });
    return;
  }
  const auto [vbuf, mbuf] = buffers();
  float *v = vbuf.data<float>(), *m = mbuf.data<float>();
  for (int64_t b0 = 0; b0 < t.P(); b0 += PC) {
    const int64_t nt = std::min(PC, t.P() - b0);
    transform(b0, nt, v, m);
    parallel_for(rows * panels, 1, [&](int64_t b, int64_t e) {
      const Tensor dubuf = empty({36 * mk.mr * nr}, DType::Float32);  // du [36][mr][nr] of one piece
      float* du = dubuf.data<float>();
      for (int64_t j = b; j < e; j++) {
        const int64_t k0 = j / panels * mk.mr, p = j % panels;
        for (int64_t xi = 0; xi < 36; xi++) product(nt, v, m, xi, k0, p, du + xi * mk.mr * nr, nr, false);
        wk.weight_adjoint(std::min<int64_t>(mk.mr, K - k0), std::min(nr, C - p * nr), du, mk.mr * nr, nr,
                          dw.data<float>() + (k0 * C + p * nr) * 9, C * 9, 9, b0 > 0);
      }
    });
  }
}

}  // namespace fk

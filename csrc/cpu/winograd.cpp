// Winograd F(4x4, 3x3) transforms for float32 convolutions, compiled once per instruction set
// like nn.cpp. Channels come in blocks of kWinoLanes; every loop over a block's lanes is a plain
// loop that the compiler turns into vector code, so one source serves every ISA.
//
// A 6x6 input patch d, a 3x3 filter g and a 4x4 output tile y are related by
//   y = A^T [(G g G^T) * (B^T d B)] A   (* elementwise, 36 products per tile and channel pair)
// with the matrices of the interpolation points 0, 1, -1, 2, -2 and infinity (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2015). The backward passes use their
// transposes: dW = G^T [sum over tiles (A dy A^T) * (B^T d B)] G.
#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "vec.h"

namespace fk::FK_ISA {
namespace {

constexpr int L = kWinoLanes;

// Each 1-D transform maps rows of L lanes at stride `is` to rows at stride `os`. The results
// go through a local array, so the compiler vectorises the lane loop without having to prove
// the output rows disjoint from the input and from each other (it did not: scalar code).
template <int N>
FK_INLINE void rows_out(const float (&r)[N][L], float* out, int64_t os) {
  for (int k = 0; k < N; k++) std::memcpy(out + k * os, r[k], L * sizeof(float));
}

// B^T: 6 -> 6 (the input patch).
FK_INLINE void bt(const float* in, int64_t is, float* out, int64_t os) {
  float r[6][L];
  for (int l = 0; l < L; l++) {
    const float d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l],
                d5 = in[5 * is + l];
    r[0][l] = 4 * d0 - 5 * d2 + d4;
    r[1][l] = -4 * (d1 + d2) + d3 + d4;
    r[2][l] = 4 * (d1 - d2) - d3 + d4;
    r[3][l] = 2 * (d3 - d1) - d2 + d4;
    r[4][l] = 2 * (d1 - d3) - d2 + d4;
    r[5][l] = 4 * d1 - 5 * d3 + d5;
  }
  rows_out(r, out, os);
}

// A^T: 6 -> 4 (back to an output tile).
FK_INLINE void at(const float* in, int64_t is, float* out, int64_t os) {
  float r[4][L];
  for (int l = 0; l < L; l++) {
    const float m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
                m5 = in[5 * is + l];
    const float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    r[0][l] = m0 + s12 + s34;
    r[1][l] = d12 + 2 * d34;
    r[2][l] = s12 + 4 * s34;
    r[3][l] = d12 + 8 * d34 + m5;
  }
  rows_out(r, out, os);
}

// A: 4 -> 6 (the adjoint of A^T, for the output gradient).
FK_INLINE void a(const float* in, int64_t is, float* out, int64_t os) {
  float r[6][L];
  for (int l = 0; l < L; l++) {
    const float y0 = in[l], y1 = in[is + l], y2 = in[2 * is + l], y3 = in[3 * is + l];
    const float e = y0 + y2, o = y1 + y3, e4 = y0 + 4 * y2, o8 = 2 * y1 + 8 * y3;
    r[0][l] = y0;
    r[1][l] = e + o;
    r[2][l] = e - o;
    r[3][l] = e4 + o8;
    r[4][l] = e4 - o8;
    r[5][l] = y3;
  }
  rows_out(r, out, os);
}

// G: 3 -> 6 (the filter).
FK_INLINE void gt(const float* in, int64_t is, float* out, int64_t os) {
  float r[6][L];
  for (int l = 0; l < L; l++) {
    const float g0 = in[l], g1 = in[is + l], g2 = in[2 * is + l];
    r[0][l] = g0 * (1.0f / 4);
    r[1][l] = (g0 + g1 + g2) * (-1.0f / 6);
    r[2][l] = (g0 - g1 + g2) * (-1.0f / 6);
    r[3][l] = g0 * (1.0f / 24) + g1 * (1.0f / 12) + g2 * (1.0f / 6);
    r[4][l] = g0 * (1.0f / 24) - g1 * (1.0f / 12) + g2 * (1.0f / 6);
    r[5][l] = g2;
  }
  rows_out(r, out, os);
}

// G^T: 6 -> 3 (the adjoint of G, for the weight gradient).
FK_INLINE void g_adj(const float* in, int64_t is, float* out, int64_t os) {
  float r[3][L];
  for (int l = 0; l < L; l++) {
    const float u0 = in[l], u1 = in[is + l], u2 = in[2 * is + l], u3 = in[3 * is + l], u4 = in[4 * is + l],
                u5 = in[5 * is + l];
    r[0][l] = u0 * (1.0f / 4) - (u1 + u2) * (1.0f / 6) + (u3 + u4) * (1.0f / 24);
    r[1][l] = (u2 - u1) * (1.0f / 6) + (u3 - u4) * (1.0f / 12);
    r[2][l] = (u3 + u4 - u1 - u2) * (1.0f / 6) + u5;
  }
  rows_out(r, out, os);
}

void to_blocked(int64_t C, int64_t H, int64_t W, const float* x, int64_t Hp, int64_t Wp, int64_t top, int64_t left,
                float* xb) {
  // Tiles of V::W channels by V::W pixels of a row, transposed in registers (channels past C
  // are zeros); the border around the image is zeroed row by row.
  using V = Vec<float>;
  constexpr int VW = V::W;
  const int64_t row = Wp * L;
  for (int64_t cb = 0; cb < (C + L - 1) / L; cb++) {
    float* blk = xb + cb * Hp * row;
    std::memset(blk, 0, size_t(top * row) * sizeof(float));
    std::memset(blk + (top + H) * row, 0, size_t((Hp - top - H) * row) * sizeof(float));
    for (int64_t h = top; h < top + H; h++) {
      std::memset(blk + h * row, 0, size_t(left * L) * sizeof(float));
      std::memset(blk + h * row + (left + W) * L, 0, size_t((Wp - left - W) * L) * sizeof(float));
    }
    for (int64_t c0 = cb * L; c0 < (cb + 1) * L; c0 += VW)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w0 = 0; w0 < W; w0 += VW) {
          const int n = int(std::min<int64_t>(VW, W - w0));
          V::R r[VW];
          for (int u = 0; u < VW; u++) {
            const float* src = x + ((c0 + u) * H + h) * W + w0;
            r[u] = c0 + u >= C ? V::zero() : n == VW ? V::load(src) : V::load_n(src, n);
          }
          V::transpose(r);
          float* d = blk + (top + h) * row + (left + w0) * L + c0 % L;
          for (int k = 0; k < n; k++) V::store(d + k * L, r[k]);
        }
  }
}

void input(int64_t nt, const WinoTile* tiles, int64_t cblocks, int64_t cb_step, int64_t row_pitch, const float* x,
           float* v, int64_t v_xi, int64_t v_t, const int64_t* voff) {
  alignas(64) float t[36 * L];
  for (int64_t i = 0; i < nt; i++)
    for (int64_t cb = 0; cb < cblocks; cb++) {
      const float* d = x + tiles[i].x + cb * cb_step;
      for (int s = 0; s < 6; s++) bt(d + s * L, row_pitch, t + s * L, 6 * L);  // down the columns
      float* out = v + i * v_t + voff[cb];
      for (int r = 0; r < 6; r++) bt(t + r * 6 * L, L, out + r * 6 * v_xi, v_xi);  // along the rows
    }
}

void output(int64_t nt, const WinoTile* tiles, const float* m, int64_t m_t, int64_t m_xi, int64_t K, int64_t Wo,
            int64_t plane, float* out) {
  alignas(64) float in[36 * L], t[24 * L], y[16 * L], yt[L * 16];
  for (int64_t i = 0; i < nt; i++)
    for (int64_t k0 = 0; k0 < K; k0 += L) {
      for (int xi = 0; xi < 36; xi++) std::memcpy(in + xi * L, m + i * m_t + xi * m_xi + k0, L * sizeof(float));
      for (int s = 0; s < 6; s++) at(in + s * L, 6 * L, t + s * L, 6 * L);
      for (int r = 0; r < 4; r++) at(t + r * 6 * L, L, y + r * 4 * L, L);
      transpose_matrix(16, L, y, L, yt, 16);  // yt [lane][16 pixels]
      const WinoTile& tile = tiles[i];
      for (int l = 0; l < L && k0 + l < K; l++) {
        float* o = out + tile.o + (k0 + l) * plane;
        for (int r = 0; r < tile.rows; r++)
          if (tile.cols == 4)
            std::memcpy(o + r * Wo, yt + l * 16 + r * 4, 4 * sizeof(float));
          else
            std::copy_n(yt + l * 16 + r * 4, tile.cols, o + r * Wo);
      }
    }
}

void output_adjoint(int64_t nt, const WinoTile* tiles, int64_t kblocks, int64_t kb_step, int64_t row_pitch,
                    const float* g, float* m, int64_t m_t, int64_t m_xi) {
  alignas(64) float t[24 * L];
  for (int64_t i = 0; i < nt; i++)
    for (int64_t kb = 0; kb < kblocks; kb++) {
      const float* y = g + tiles[i].x + kb * kb_step;
      for (int r = 0; r < 4; r++) a(y + r * row_pitch, L, t + r * 6 * L, L);  // along the rows: 4 x 6
      float* o = m + i * m_t + kb * L;
      for (int s = 0; s < 6; s++) a(t + s * L, 6 * L, o + s * m_xi, 6 * m_xi);
    }
}

void weight(int64_t O, int64_t I, const float* w, int64_t so, int64_t si, int64_t sr, int64_t ss, int64_t nr, float* u,
            int64_t u_xi) {
  alignas(64) float g[9 * L], t[18 * L], uu[36 * L];
  for (int64_t i = 0; i < I; i++)
    for (int64_t o0 = 0; o0 < O; o0 += L) {  // all of row i of the panel before the next row
      const int lanes = int(std::min<int64_t>(L, O - o0));
      std::fill(g, g + 9 * L, 0.0f);  // lanes past O: zero filters, the panel's padding
      for (int l = 0; l < lanes; l++)
        for (int r = 0; r < 3; r++)
          for (int s = 0; s < 3; s++) g[(r * 3 + s) * L + l] = w[(o0 + l) * so + i * si + r * sr + s * ss];
      for (int s = 0; s < 3; s++) gt(g + s * L, 3 * L, t + s * L, 3 * L);  // 6 x 3
      for (int r = 0; r < 6; r++) gt(t + r * 3 * L, L, uu + r * 6 * L, L);
      for (int xi = 0; xi < 36; xi++) std::memcpy(u + xi * u_xi + i * nr + o0, uu + xi * L, L * sizeof(float));
    }
}

void weight_adjoint(int64_t O, int64_t I, const float* du, int64_t u_xi, int64_t u_o, float* w, int64_t so, int64_t si,
                    bool accumulate) {
  alignas(64) float in[36 * L], t[18 * L], g[9 * L];
  for (int64_t o = 0; o < O; o++)
    for (int64_t i0 = 0; i0 < I; i0 += L) {
      for (int xi = 0; xi < 36; xi++) std::memcpy(in + xi * L, du + xi * u_xi + o * u_o + i0, L * sizeof(float));
      for (int s = 0; s < 6; s++) g_adj(in + s * L, 6 * L, t + s * L, 6 * L);  // 3 x 6
      for (int r = 0; r < 3; r++) g_adj(t + r * 6 * L, L, g + r * 3 * L, L);
      for (int l = 0; l < L && i0 + l < I; l++)
        for (int k = 0; k < 9; k++) {
          float& d = w[o * so + (i0 + l) * si + k];
          d = accumulate ? d + g[k * L + l] : g[k * L + l];
        }
    }
}

}  // namespace

extern const WinogradKernels winograd_kernels = {to_blocked, input, output, output_adjoint, weight, weight_adjoint};

}  // namespace fk::FK_ISA

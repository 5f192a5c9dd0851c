// Winograd filter transform U = G g G^T of one 3x3 filter, shared by the
// planar Winograd (ops/conv.cpp) and the channels-in-lanes one
// (ops/conv_wino_small.cpp), so both use the same interpolation points.
// Computed in double and rounded once.
#pragma once
#include <cstdint>

namespace pyengine {

// u[xi] for xi = (e+2) * i + j, i, j < e + 2: F(2x2, 3x3) (e = 2, 16 values)
// or F(4x4, 3x3) (e = 4, 36 values, points 0, +-1, +-2).
inline void winograd_filter(const float* g, int e, float* u) {
  static const double G2[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
  static const double G4[6][3] = {{1. / 4, 0, 0},           {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6},
                                  {1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}};
  const double(*G)[3] = e == 4 ? G4 : G2;
  const int al = e + 2;
  double tg[6][3];  // G g
  for (int i = 0; i < al; ++i)
    for (int k = 0; k < 3; ++k) tg[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
  for (int i = 0; i < al; ++i)
    for (int j = 0; j < al; ++j)
      u[al * i + j] = static_cast<float>(tg[i][0] * G[j][0] + tg[i][1] * G[j][1] + tg[i][2] * G[j][2]);
}

}  // namespace pyengine

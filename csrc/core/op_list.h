// The elementwise ops, one line each: the single list from which the op enums and names
// (below), the autograd tables of ops_elementwise.cpp (checked against it at compile
// time) and the bindings come. X(Enum, "name"), the name being PyTorch's.
#pragma once
#include <cstdint>

#include <iterator>

// clang-format off: one line of ops per row reads better than one op per line
#define FK_BINARY_OPS(X)                                                                                     \
  X(Add, "add") X(Sub, "sub") X(Mul, "mul") X(Div, "div") X(Pow, "pow") X(FloorDiv, "floor_divide")           \
  X(Rem, "remainder") X(Max, "maximum") X(Min, "minimum") X(Atan2, "atan2") X(Eq, "eq") X(Ne, "ne")           \
  X(Lt, "lt") X(Le, "le") X(Gt, "gt") X(Ge, "ge") X(And, "bitwise_and") X(Or, "bitwise_or")                   \
  X(Xor, "bitwise_xor") X(ReluGrad, "threshold_backward")

#define FK_UNARY_OPS(X)                                                                                      \
  X(Neg, "neg") X(Abs, "abs") X(Exp, "exp") X(Log, "log") X(Sqrt, "sqrt") X(Rsqrt, "rsqrt") X(Sin, "sin")      \
  X(Cos, "cos") X(Tanh, "tanh") X(Sigmoid, "sigmoid") X(Relu, "relu") X(Sign, "sign") X(Floor, "floor")        \
  X(Ceil, "ceil") X(Round, "round") X(Trunc, "trunc") X(Erf, "erf") X(Asin, "asin") X(Acos, "acos")            \
  X(Atan, "atan") X(Not, "bitwise_not")

// clang-format on

#define FK_OP_ENUM(e, name) e,
#define FK_OP_NAME(e, name) name,

namespace fk {

enum class BinOp : uint8_t { FK_BINARY_OPS(FK_OP_ENUM) };
enum class UnOp : uint8_t { FK_UNARY_OPS(FK_OP_ENUM) };
inline constexpr const char* kBinaryNames[] = {FK_BINARY_OPS(FK_OP_NAME)};
inline constexpr const char* kUnaryNames[] = {FK_UNARY_OPS(FK_OP_NAME)};
inline constexpr int kNumBinOps = int(std::size(kBinaryNames)), kNumUnOps = int(std::size(kUnaryNames));
enum class RedOp : uint8_t { Sum, Prod, Max, Min, ArgMax, ArgMin, All, Any };

inline bool is_comparison(BinOp op) { return op >= BinOp::Eq && op <= BinOp::Ge; }

}  // namespace fk

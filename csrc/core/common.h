// Small shared pieces of the core: errors, intrusive refcounting, fixed-capacity dims.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace fk {

constexpr int kMaxDims = 8;

// Python exception class that an error maps to (the bindings translate).
enum class ErrorKind { Runtime, Value, Index, Type, NotImplemented, OutOfMemory };

struct Error : std::runtime_error {
  ErrorKind kind;
  Error(ErrorKind k, const std::string& msg) : std::runtime_error(msg), kind(k) {}
};

template <class... A>
std::string str_cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}

#define FK_CHECK(cond, kind, ...)                                                      \
  do {                                                                                 \
    if (!(cond)) throw ::fk::Error(::fk::ErrorKind::kind, ::fk::str_cat(__VA_ARGS__)); \
  } while (0)

// Intrusive refcount: one allocation per object, and a raw pointer can be re-wrapped.
struct RefCounted {
  std::atomic<int32_t> refs{0};
  virtual ~RefCounted() = default;
};

template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(T* p) : p_(p) {
    if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  ~Ref() { reset(); }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  void reset() {
    if (p_ && p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p_;
    p_ = nullptr;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const Ref& o) const { return p_ == o.p_; }
  bool operator!=(const Ref& o) const { return p_ != o.p_; }

 private:
  T* p_ = nullptr;
};

// Shape or strides: inline storage, no heap allocation on the hot path.
struct Dims {
  int64_t v[kMaxDims];
  int n = 0;
  Dims() = default;
  Dims(std::initializer_list<int64_t> l) {
    for (int64_t x : l) push_back(x);
  }
  static Dims filled(int n, int64_t x) {
    Dims d;
    for (int i = 0; i < n; i++) d.push_back(x);
    return d;
  }
  int size() const { return n; }
  bool empty() const { return n == 0; }
  int64_t& operator[](int i) { return v[i]; }
  int64_t operator[](int i) const { return v[i]; }
  void push_back(int64_t x) {
    FK_CHECK(n < kMaxDims, Value, "tensors have at most ", kMaxDims, " dimensions");
    v[n++] = x;
  }
  void insert(int pos, int64_t x) {
    FK_CHECK(n < kMaxDims, Value, "tensors have at most ", kMaxDims, " dimensions");
    for (int i = n; i > pos; i--) v[i] = v[i - 1];
    v[pos] = x;
    n++;
  }
  void erase(int pos) {
    for (int i = pos; i + 1 < n; i++) v[i] = v[i + 1];
    n--;
  }
  int64_t back() const { return v[n - 1]; }
  const int64_t* begin() const { return v; }
  const int64_t* end() const { return v + n; }
  int64_t prod() const {
    int64_t p = 1;
    for (int i = 0; i < n; i++) p *= v[i];
    return p;
  }
  bool operator==(const Dims& o) const {
    if (n != o.n) return false;
    for (int i = 0; i < n; i++)
      if (v[i] != o.v[i]) return false;
    return true;
  }
  bool operator!=(const Dims& o) const { return !(*this == o); }
};

// "[2, 3]", the format error messages use for shapes.
std::string to_string(const Dims& d);

// The number of elements of `shape`, after checking that it has no negative size and that
// neither it nor any contiguous stride (the product of the sizes, zeros counted as ones)
// overflows int64. Every shape a tensor or view gets passes here, so numel() never wraps.
int64_t checked_numel(const Dims& shape);

// Wrap a possibly negative dim into [0, ndim); IndexError naming the range otherwise.
int wrap_dim(int64_t dim, int ndim);

}  // namespace fk

// The SIMT emulator's scheduler and runtime API (interface: simt.h; overview: README.md).
//
// A launch runs on the calling host thread, under one process-wide mutex: the grid's blocks one
// after another, in an order drawn from the seed, and within a block every thread as a fiber on
// its own stack. A fiber runs until it waits at a barrier or a warp collective, or returns; when
// no fiber can run, the scheduler releases the warp groups and the barrier whose threads have all
// arrived, computes their results, and runs the released fibers in a freshly shuffled order. A
// wait that can never complete (threads that exited before a barrier, lanes at different
// collectives) fails the launch with a message instead of hanging.
#include "simt.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define FK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FK_EMU_ASAN 1
#endif
#endif
#ifdef FK_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// ---- Context switch (x86-64) ---------------------------------------------------------------------
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp, and
// continues on next_sp, whose stack holds the same layout (a fiber switched away earlier, or one
// that prepare_fiber laid out so that the `ret` enters the trampoline). No system call, unlike
// swapcontext, which saves the signal mask every switch. The MXCSR and x87 control words are left
// alone (saving them took most of a switch's time): kernels run with the host thread's rounding
// mode and never change it.
#if defined(__x86_64__)
#define FK_EMU_ASM_SWITCH 1
extern "C" void fk_emu_swap_context(void** save_sp, void* next_sp);
extern "C" void fk_emu_fiber_trampoline();
asm(R"(
    .text
    .p2align 4
    .globl  fk_emu_swap_context
    .hidden fk_emu_swap_context
    .type   fk_emu_swap_context, @function
fk_emu_swap_context:
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .size   fk_emu_swap_context, .-fk_emu_swap_context

    # A new fiber starts here: r12 holds the entry function, r13 its argument.
    .p2align 4
    .globl  fk_emu_fiber_trampoline
    .hidden fk_emu_fiber_trampoline
    .type   fk_emu_fiber_trampoline, @function
fk_emu_fiber_trampoline:
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .size   fk_emu_fiber_trampoline, .-fk_emu_fiber_trampoline
)");
#endif

// The dynamic linker's TLS lookup: the address of a module's thread-local block for this thread.
extern "C" void* __tls_get_addr(void*);

namespace fk_emu {
namespace detail {
Coords g_coords{};
}  // namespace detail

namespace {
using detail::g_coords;
using detail::LaunchSpec;
using detail::Op;

// ---- Settings ------------------------------------------------------------------------------------

constexpr std::uint64_t kDefaultSeed = 0x5eed;
constexpr size_t kDefaultSmem = 48 * 1024, kMaxSmemOptin = 227 * 1024;
constexpr int kMultiprocessors = 8;                   // small, so that grid-stride loops loop in tests
constexpr std::uint64_t kPoison = ~std::uint64_t(0);  // a shuffle from a lane that did not take part

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* s = std::getenv(name);
  if (!s || !*s) return fallback;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 0);
  if (*end || errno) {
    std::fprintf(stderr, "fastkern SIMT emulator: ignoring %s=%s (not a number)\n", name, s);
    return fallback;
  }
  return v;
}

bool shadow_stack_enabled() {
#if defined(FK_EMU_ASM_SWITCH)
  // rdssp is a no-op (leaving 0) unless CET shadow stacks are on; the hand-written switch does
  // not switch shadow stacks, so they need the ucontext switch.
  std::uint64_t ssp = 0;
  asm volatile("rdsspq %0" : "+r"(ssp));
  return ssp != 0;
#else
  return false;
#endif
}

struct Settings {
  std::atomic<std::uint64_t> seed{env_number("FASTKERN_EMU_SEED", kDefaultSeed)};
  std::atomic<size_t> memory_cap{size_t(env_number("FASTKERN_EMU_MEMORY_MB", 0)) << 20};
#ifdef FK_EMU_ASAN
  size_t stack_bytes = size_t(env_number("FASTKERN_EMU_STACK_KB", 512)) << 10;  // ASan's frames are larger
#else
  size_t stack_bytes = size_t(env_number("FASTKERN_EMU_STACK_KB", 128)) << 10;
#endif
  bool quiet = env_number("FASTKERN_EMU_QUIET", 0) != 0;
  bool use_ucontext = [] {
    const char* f = std::getenv("FASTKERN_EMU_FIBERS");
#if defined(FK_EMU_ASM_SWITCH)
    return (f && std::strcmp(f, "ucontext") == 0) || shadow_stack_enabled();
#else
    (void)f;
    return true;
#endif
  }();
};
// Leaked on purpose, like the other singletons here: host code may still call the runtime
// while static objects are destroyed at exit.
Settings& settings() {
  static Settings& s = *new Settings;
  return s;
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

// ---- Errors --------------------------------------------------------------------------------------
// As in CUDA, an API call's error is remembered per host thread until cudaGetLastError reads it,
// and a kernel's failure is returned by the next synchronising call (or cudaGetLastError). Unlike
// on a GPU it is not sticky: once reported, the emulated device works again, so that one failing
// test does not fail every later one.

thread_local cudaError_t t_last_error = cudaSuccess;
std::atomic<int> g_pending{cudaSuccess};

struct Failure {
  std::mutex mutex;
  std::string message;
};
Failure& failure() {
  static Failure& f = *new Failure;
  return f;
}
void set_failure(std::string message) {
  std::lock_guard lock(failure().mutex);
  failure().message = std::move(message);
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}
// A failed kernel's error, once.
cudaError_t take_pending() {
  int e = g_pending.exchange(cudaSuccess);
  if (e != cudaSuccess && t_last_error == e) t_last_error = cudaSuccess;
  return cudaError_t(e);
}

// ---- Fibers --------------------------------------------------------------------------------------

struct Thread;

struct Fiber {
  void* sp = nullptr;              // the hand-written switch's saved stack pointer
  std::unique_ptr<ucontext_t> uc;  // the ucontext switch's context
  char* stack = nullptr;           // lowest usable address; a guard page lies below
  size_t stack_size = 0;
  size_t top_offset = 0;       // where the stack starts below its top (see ensure_threads)
  void* fake_stack = nullptr;  // ASan's, while the fiber is switched away
};

char* map_stack(size_t size) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mprotect(p, page, PROT_NONE);  // a kernel that overflows its stack faults instead of corrupting another's
  return static_cast<char*>(p) + page;
}

[[noreturn]] void fiber_main(Thread* t);

void ucontext_entry(unsigned hi, unsigned lo) {  // makecontext passes int-sized arguments
  fiber_main(reinterpret_cast<Thread*>((std::uintptr_t(hi) << 32) | lo));
}

// Lays out a fiber's stack so that the next switch to it calls fiber_main(t).
void prepare_fiber(Fiber& f, Thread* t) {
  if (settings().use_ucontext) {
    getcontext(f.uc.get());
    f.uc->uc_stack.ss_sp = f.stack;
    f.uc->uc_stack.ss_size = f.stack_size;
    f.uc->uc_link = nullptr;
    auto bits = reinterpret_cast<std::uintptr_t>(t);
    makecontext(f.uc.get(), reinterpret_cast<void (*)()>(&ucontext_entry), 2, unsigned(bits >> 32), unsigned(bits));
    return;
  }
#if defined(FK_EMU_ASM_SWITCH)
  // What fk_emu_swap_context pops, from the new stack pointer up: r15, r14, r13 = t,
  // r12 = fiber_main, rbx, rbp = 0 (ends frame-pointer backtraces here), and the return address,
  // the trampoline. After the `ret` the stack pointer is 16-byte aligned, as the trampoline's
  // call requires.
  auto top = (reinterpret_cast<std::uintptr_t>(f.stack) + f.stack_size - f.top_offset) & ~std::uintptr_t(15);
  auto* slot = reinterpret_cast<std::uint64_t*>(top);
  slot[-1] = reinterpret_cast<std::uint64_t>(&fk_emu_fiber_trampoline);
  slot[-2] = 0;
  slot[-3] = 0;
  slot[-4] = reinterpret_cast<std::uint64_t>(&fiber_main);
  slot[-5] = reinterpret_cast<std::uint64_t>(t);
  slot[-6] = 0;
  slot[-7] = 0;
  f.sp = &slot[-7];
#endif
}

void switch_fiber(Fiber& from, Fiber& to) {
  if (settings().use_ucontext) {
    swapcontext(from.uc.get(), to.uc.get());
    return;
  }
#if defined(FK_EMU_ASM_SWITCH)
  fk_emu_swap_context(&from.sp, to.sp);
#endif
}

// ASan must be told which stack is current (it checks accesses against it and keeps each
// fiber's fake stack for use-after-return detection).
#ifdef FK_EMU_ASAN
void asan_start(void** fake, const void* bottom, size_t size) { __sanitizer_start_switch_fiber(fake, bottom, size); }
void asan_finish(void* fake, const void** old_bottom, size_t* old_size) {
  __sanitizer_finish_switch_fiber(fake, old_bottom, old_size);
}
#else
void asan_start(void**, const void*, size_t) {}
void asan_finish(void*, const void**, size_t*) {}
#endif

// ---- Shared memory -------------------------------------------------------------------------------
// __shared__ variables are thread_local (simt.h), so they all lie in this module's TLS segment,
// and that is the only way to find them: a macro in front of a declaration cannot take the
// declared variable's address, and GCC ignores section attributes on static variables of
// function templates. A launch saves this thread's copy of the segment, fills it with 0xFF
// before each block (reading shared memory before writing it gives NaN or -1), and restores it
// afterwards: the module's other thread_locals (fastkern's, and t_last_error above) are not
// touched by kernel code, and the emulator does not use them while a grid runs.

struct TlsSegment {
  size_t module = 0, size = 0;
};

const TlsSegment& tls_segment() {
  static const TlsSegment segment = [] {
    struct Search {
      std::uintptr_t code;
      TlsSegment found;
    } search{reinterpret_cast<std::uintptr_t>(&tls_segment), {}};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
          auto& s = *static_cast<Search*>(data);
          bool ours = false;
          size_t tls_size = 0;
          for (int i = 0; i < info->dlpi_phnum; ++i) {
            const auto& ph = info->dlpi_phdr[i];
            std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
            if (ph.p_type == PT_LOAD && s.code >= start && s.code < start + ph.p_memsz) ours = true;
            if (ph.p_type == PT_TLS) tls_size = ph.p_memsz;
          }
          if (ours) s.found = {info->dlpi_tls_modid, tls_size};
          return ours ? 1 : 0;
        },
        &search);
    return search.found;
  }();
  return segment;
}

class SharedPoison {
 public:
  SharedPoison() {
    const TlsSegment& seg = tls_segment();
    if (seg.module == 0 || seg.size == 0) return;
    struct {
      unsigned long module, offset;
    } index{seg.module, 0};
    block_ = static_cast<char*>(__tls_get_addr(&index));
    saved_.assign(block_, block_ + seg.size);
  }
  ~SharedPoison() {
    if (block_) std::memcpy(block_, saved_.data(), saved_.size());
  }
  SharedPoison(const SharedPoison&) = delete;
  SharedPoison& operator=(const SharedPoison&) = delete;
  void fill() {
    if (block_) std::memset(block_, 0xFF, saved_.size());
  }

 private:
  char* block_ = nullptr;
  std::vector<char> saved_;
};

// ---- The scheduler -------------------------------------------------------------------------------

enum class State : std::uint8_t { Ready, Waiting, Exited, Failed };

struct Thread {
  uint3 idx{};
  unsigned linear = 0;  // x + y*bx + z*bx*by: lane linear % 32 of warp linear / 32
  State state = State::Ready;
  bool abandoned = false;  // left mid-kernel by a failed launch
  // What it waits at, and the result the scheduler leaves for it.
  Op op = Op::Barrier;
  unsigned mask = 0;
  int arg = 0, width = 32;
  std::uint64_t value = 0, result = 0;
  std::source_location where{};
  Fiber fiber;
};

struct Grid {
  const LaunchSpec* spec;
  unsigned nthreads;
  char* dynamic_smem;
  std::string failure;  // what went wrong, set by the failing fiber or the scheduler
};

// All guarded by launch_mutex: one launch runs at a time in the process.
struct Scheduler {
  std::mutex launch_mutex;
  std::atomic<std::thread::id> owner{};  // the host thread running a grid
  std::vector<Thread> threads = std::vector<Thread>(1024);
  std::vector<unsigned> ready;
  Fiber main;                        // the launching thread's own context
  const void* main_stack = nullptr;  // its stack, which ASan tells each fiber on its first switch
  size_t main_stack_size = 0;
  Grid* grid = nullptr;
  Thread* current = nullptr;
};
Scheduler& sched() {
  static Scheduler& s = *new Scheduler;
  return s;
}

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fisher-Yates; seed 0 keeps the ascending order in which the scheduler collects threads.
void shuffle(std::vector<unsigned>& v, std::uint64_t& rng) {
  if (settings().seed.load() == 0) return;
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[splitmix(rng) % i]);
}

// The order of the blocks: i -> (a*i + c) mod n with a coprime to n, a bijection drawn from the seed.
struct BlockOrder {
  std::uint64_t n, a = 1, c = 0;
  BlockOrder(std::uint64_t count, std::uint64_t seed) : n(count) {
    if (seed == 0 || n < 2) return;
    std::uint64_t rng = seed ^ (n * 0x2545f4914f6cdd1dull);
    a = 1 + splitmix(rng) % (n - 1);
    while (std::gcd(a, n) != 1) a = a % (n - 1) + 1;
    c = splitmix(rng) % n;
  }
  std::uint64_t operator()(std::uint64_t i) const { return std::uint64_t(((unsigned __int128)a * i + c) % n); }
};

const char* op_name(Op op) {
  switch (op) {
    case Op::Barrier: return "__syncthreads()";
    case Op::BarrierCount: return "__syncthreads_count()";
    case Op::BarrierAnd: return "__syncthreads_and()";
    case Op::BarrierOr: return "__syncthreads_or()";
    case Op::SyncWarp: return "__syncwarp";
    case Op::Ballot: return "__ballot_sync";
    case Op::Any: return "__any_sync";
    case Op::All: return "__all_sync";
    case Op::ShflIdx: return "__shfl_sync";
    case Op::ShflUp: return "__shfl_up_sync";
    case Op::ShflDown: return "__shfl_down_sync";
    case Op::ShflXor: return "__shfl_xor_sync";
    case Op::ReduceAdd: return "__reduce_add_sync";
    case Op::ReduceMinU:
    case Op::ReduceMinI: return "__reduce_min_sync";
    case Op::ReduceMaxU:
    case Op::ReduceMaxI: return "__reduce_max_sync";
    case Op::ReduceAnd: return "__reduce_and_sync";
    case Op::ReduceOr: return "__reduce_or_sync";
    case Op::ReduceXor: return "__reduce_xor_sync";
  }
  return "?";
}
bool is_warp_op(Op op) { return op >= Op::SyncWarp; }

std::string site(const std::source_location& w) {
  const char* file = w.file_name();
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  return format("%s:%u", file, unsigned(w.line()));
}
bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() && std::strcmp(a.file_name(), b.file_name()) == 0;
}
std::string thread_name(const Thread& t) { return format("thread (%u,%u,%u)", t.idx.x, t.idx.y, t.idx.z); }
std::string wait_name(const Thread& t) {
  if (is_warp_op(t.op)) return format("%s(mask 0x%08x) at %s", op_name(t.op), t.mask, site(t.where).c_str());
  return format("%s at %s", op_name(t.op), site(t.where).c_str());
}

// Switches from the scheduler to t until it waits, exits or fails.
void resume(Thread& t) {
  Scheduler& s = sched();
  s.current = &t;
  g_coords.thread_idx = t.idx;
  void* fake = nullptr;
  asan_start(&fake, t.fiber.stack, t.fiber.stack_size);
  switch_fiber(s.main, t.fiber);
  asan_finish(fake, nullptr, nullptr);
}

// Switches from the running fiber back to the scheduler; returns when it is resumed.
void suspend(Thread& t) {
  Scheduler& s = sched();
  asan_start(&t.fiber.fake_stack, s.main_stack, s.main_stack_size);
  switch_fiber(t.fiber, s.main);
  asan_finish(t.fiber.fake_stack, &s.main_stack, &s.main_stack_size);
}

[[noreturn]] void fiber_main(Thread* t) {
  Scheduler& s = sched();
  asan_finish(nullptr, &s.main_stack, &s.main_stack_size);
  s.grid->spec->invoke(s.grid->spec->args);
  t->state = State::Exited;
  asan_start(nullptr, s.main_stack, s.main_stack_size);  // nullptr: ASan drops this fiber's fake stack
  switch_fiber(t->fiber, s.main);
  std::abort();  // an exited fiber is never resumed
}

// Fails the launch from inside a fiber, which is then abandoned. (printf-style, so that no
// string object stays alive on the abandoned stack.)
[[noreturn]] void fail_thread(Thread& t, const std::source_location& where, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fail_thread(Thread& t, const std::source_location& where, const char* fmt, ...) {
  Grid& g = *sched().grid;
  if (g.failure.empty()) {
    va_list args;
    va_start(args, fmt);
    char what[256];
    std::vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    g.failure = thread_name(t) + " at " + site(where) + ": " + what;
  }
  t.state = State::Failed;
  suspend(t);
  std::abort();  // a failed fiber is never resumed
}

void start_thread(Thread& t) {
#ifdef FK_EMU_ASAN
  // Frames a failed launch left on this stack keep their redzones poisoned; a new fiber's
  // frames would trip over them.
  if (t.abandoned) ASAN_UNPOISON_MEMORY_REGION(t.fiber.stack, t.fiber.stack_size);
#endif
  t.abandoned = false;
  t.state = State::Ready;
  t.fiber.fake_stack = nullptr;
  prepare_fiber(t.fiber, &t);
}

// Results for a warp collective whose participating lanes (group, bits relative to base) have
// all arrived.
void complete_warp_op(unsigned base, unsigned group) {
  auto& threads = sched().threads;
  const Op op = threads[base + unsigned(std::countr_zero(group))].op;
  unsigned ballot = 0;
  std::uint64_t acc = 0;
  bool first = true;
  for (unsigned j = 0; j < 32; ++j) {
    if (!(group >> j & 1)) continue;
    const std::uint64_t v = threads[base + j].value;
    if (v) ballot |= 1u << j;
    const auto u = std::uint32_t(v);
    const auto i = std::int32_t(u);
    switch (op) {
      case Op::ReduceAdd: acc = std::uint32_t(acc + u); break;
      case Op::ReduceMinU: acc = first || u < acc ? u : acc; break;
      case Op::ReduceMaxU: acc = first || u > acc ? u : acc; break;
      case Op::ReduceMinI: acc = first || i < std::int32_t(acc) ? std::uint32_t(i) : acc; break;
      case Op::ReduceMaxI: acc = first || i > std::int32_t(acc) ? std::uint32_t(i) : acc; break;
      case Op::ReduceAnd: acc = first ? u : (acc & u); break;
      case Op::ReduceOr: acc |= u; break;
      case Op::ReduceXor: acc ^= u; break;
      default: break;
    }
    first = false;
  }
  for (unsigned j = 0; j < 32; ++j) {
    if (!(group >> j & 1)) continue;
    Thread& t = threads[base + j];
    switch (op) {
      case Op::SyncWarp: t.result = 0; break;
      case Op::Ballot: t.result = ballot; break;
      case Op::Any: t.result = ballot != 0; break;
      case Op::All: t.result = ballot == group; break;
      case Op::ShflIdx:
      case Op::ShflUp:
      case Op::ShflDown:
      case Op::ShflXor: {
        // Lanes shuffle within segments of `width` lanes; a source outside the segment (up,
        // down, xor) gives the lane its own value, as on the GPU.
        const int w = t.width, lane = int(j), start = lane & ~(w - 1);
        int src = lane;
        if (op == Op::ShflIdx) src = start + (t.arg & (w - 1));
        if (op == Op::ShflUp) src = lane - t.arg < start ? lane : lane - t.arg;
        if (op == Op::ShflDown) src = lane + t.arg >= start + w ? lane : lane + t.arg;
        if (op == Op::ShflXor) src = (lane ^ t.arg) < 0 || (lane ^ t.arg) >= start + w ? lane : lane ^ t.arg;
        // Reading a lane that does not take part (exited, or not in the mask) is undefined in
        // CUDA; the emulator makes it visible.
        t.result = src == lane ? t.value : (group >> src & 1) ? threads[base + unsigned(src)].value : kPoison;
        break;
      }
      default: t.result = acc; break;
    }
    t.state = State::Ready;
  }
}

// Releases every warp collective whose lanes named in its mask have all arrived (with the same
// operation and mask) or exited; appends them to ready.
void release_warps(unsigned n, std::vector<unsigned>& ready) {
  auto& threads = sched().threads;
  for (unsigned base = 0; base < n; base += 32) {
    const unsigned lanes = std::min(32u, n - base);
    for (unsigned l = 0; l < lanes; ++l) {
      const Thread& t = threads[base + l];
      if (t.state != State::Waiting || !is_warp_op(t.op)) continue;
      unsigned group = 0;
      bool complete = true;
      for (unsigned j = 0; j < lanes && complete; ++j) {
        if (!(t.mask >> j & 1)) continue;
        const Thread& u = threads[base + j];
        if (u.state == State::Waiting && u.op == t.op && u.mask == t.mask)
          group |= 1u << j;
        else
          complete = u.state == State::Exited;
      }
      if (!complete) continue;
      complete_warp_op(base, group);
      for (unsigned j = 0; j < lanes; ++j)
        if (group >> j & 1) ready.push_back(base + j);
    }
  }
}

// Called when no thread can run and no warp collective can complete: releases the block's
// barrier if every thread waits at it, or explains in g.failure why the block cannot go on.
void release_barrier(Grid& g, std::vector<unsigned>& ready) {
  auto& threads = sched().threads;
  const unsigned n = g.nthreads;
  unsigned exited = 0, at_barrier = 0;
  const Thread *first_exited = nullptr, *first_barrier = nullptr, *other_barrier = nullptr, *warp_waiter = nullptr;
  for (unsigned i = 0; i < n; ++i) {
    const Thread& t = threads[i];
    if (t.state == State::Exited) {
      exited++;
      if (!first_exited) first_exited = &t;
    } else if (is_warp_op(t.op)) {
      if (!warp_waiter) warp_waiter = &t;
    } else {
      at_barrier++;
      if (!first_barrier)
        first_barrier = &t;
      else if (!other_barrier && (t.op != first_barrier->op || !same_site(t.where, first_barrier->where)))
        other_barrier = &t;
    }
  }
  if (exited == n) return;  // the block is done
  if (warp_waiter) {
    // Some lane named in its mask waits elsewhere (nothing is runnable now).
    const unsigned base = warp_waiter->linear & ~31u;
    for (unsigned j = 0; j < 32 && base + j < n; ++j) {
      const Thread& u = threads[base + j];
      if (!(warp_waiter->mask >> j & 1) || u.state == State::Exited ||
          (u.op == warp_waiter->op && u.mask == warp_waiter->mask))
        continue;
      g.failure = format(
          "warp %u cannot complete a collective: lane %u (%s) waits at %s, but lane %u (%s), named in "
          "its mask, waits at %s",
          base / 32, warp_waiter->linear % 32, thread_name(*warp_waiter).c_str(), wait_name(*warp_waiter).c_str(), j,
          thread_name(u).c_str(), wait_name(u).c_str());
      return;
    }
    g.failure = format("%s cannot complete a collective: it waits at %s", thread_name(*warp_waiter).c_str(),
                       wait_name(*warp_waiter).c_str());
    return;
  }
  if (exited) {
    g.failure = format(
        "barrier divergence: %u thread(s) wait at %s, but %u thread(s) of the block have exited "
        "(first: %s), so the barrier can never complete; every thread of a block must reach each "
        "__syncthreads()",
        at_barrier, wait_name(*first_barrier).c_str(), exited, thread_name(*first_exited).c_str());
    return;
  }
  if (other_barrier) {
    g.failure = format("threads wait at different barriers: %s at %s, %s at %s (a barrier in divergent code)",
                       thread_name(*first_barrier).c_str(), wait_name(*first_barrier).c_str(),
                       thread_name(*other_barrier).c_str(), wait_name(*other_barrier).c_str());
    return;
  }
  unsigned count = 0;
  for (unsigned i = 0; i < n; ++i) count += threads[i].value != 0;
  const Op op = first_barrier->op;
  const std::uint64_t result = op == Op::BarrierCount ? count : op == Op::BarrierAnd ? count == n : count != 0;
  for (unsigned i = 0; i < n; ++i) {
    threads[i].result = result;
    threads[i].state = State::Ready;
    ready.push_back(i);
  }
}

void run_block(Grid& g, std::uint64_t block) {
  Scheduler& s = sched();
  std::uint64_t rng = settings().seed.load() ^ (block * 0xd1b54a32d192ed03ull);
  for (unsigned i = 0; i < g.nthreads; ++i) start_thread(s.threads[i]);
  s.ready.resize(g.nthreads);
  std::iota(s.ready.begin(), s.ready.end(), 0u);
  for (;;) {
    shuffle(s.ready, rng);
    for (unsigned i : s.ready) {
      resume(s.threads[i]);
      if (!g.failure.empty()) return;
    }
    s.ready.clear();
    release_warps(g.nthreads, s.ready);
    if (s.ready.empty()) release_barrier(g, s.ready);
    if (s.ready.empty()) return;  // done, or g.failure says why not
  }
}

bool ensure_threads(unsigned n) {
  Scheduler& s = sched();
  const bool uc = settings().use_ucontext;
  if (uc && !s.main.uc) s.main.uc = std::make_unique<ucontext_t>();
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = s.threads[i].fiber;
    if (!f.stack) {
      f.stack = map_stack(settings().stack_bytes);
      if (!f.stack) return false;
      f.stack_size = settings().stack_bytes;
      // The stacks lie the same distance apart, so the hot top of each would fall in the same
      // cache sets; starting each a little lower (under 4 KB) spreads them.
      f.top_offset = i * 320 % 4096;
    }
    if (uc && !f.uc) f.uc = std::make_unique<ucontext_t>();
  }
  return true;
}

// Runs the grid; returns what went wrong, or "".
std::string run_grid(const LaunchSpec& spec) {
  Scheduler& s = sched();
  const dim3 b = spec.block, gd = spec.grid;
  const unsigned n = b.x * b.y * b.z;
  if (!ensure_threads(n)) return "could not map the fibers' stacks";
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = s.threads[i];
    t.linear = i;
    t.idx = {i % b.x, i / b.x % b.y, i / (b.x * b.y)};
  }
  // Exactly smem bytes, so that ASan sees an access past them.
  char* smem = static_cast<char*>(::operator new(spec.smem, std::align_val_t(16)));
  Grid g{&spec, n, smem, {}};
  s.grid = &g;
  g_coords.block_dim = b;
  g_coords.grid_dim = gd;
  const std::uint64_t nblocks = std::uint64_t(gd.x) * gd.y * gd.z;
  const BlockOrder order(nblocks, settings().seed.load());
  {
    SharedPoison shared;
    for (std::uint64_t i = 0; i < nblocks && g.failure.empty(); ++i) {
      const std::uint64_t k = order(i);
      g_coords.block_idx = {unsigned(k % gd.x), unsigned(k / gd.x % gd.y), unsigned(k / (std::uint64_t(gd.x) * gd.y))};
      shared.fill();
      std::memset(smem, 0xFF, spec.smem);
      run_block(g, k);
    }
  }
  for (unsigned i = 0; i < n; ++i) s.threads[i].abandoned = s.threads[i].state != State::Exited;
  s.grid = nullptr;
  s.current = nullptr;
  ::operator delete(smem, std::align_val_t(16));
  if (g.failure.empty()) return g.failure;
  const uint3 bi = g_coords.block_idx;
  return format("kernel %s<<<(%u,%u,%u), (%u,%u,%u)>>>, block (%u,%u,%u): ", spec.name, gd.x, gd.y, gd.z, b.x, b.y, b.z,
                bi.x, bi.y, bi.z) +
         g.failure;
}

// ---- Memory, streams, events, kernel attributes ------------------------------------------------

struct Memory {
  std::mutex mutex;
  std::map<std::uintptr_t, size_t> blocks;  // cudaMalloc'd: start -> size
  size_t used = 0;                          // their sizes rounded up to 256 bytes
};
Memory& memory() {
  static Memory& m = *new Memory;
  return m;
}
size_t physical_memory() { return size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE)); }
size_t memory_total() {
  const size_t cap = settings().memory_cap.load();
  return cap ? cap : physical_memory();
}
size_t rounded(size_t n) { return (n + 255) & ~size_t(255); }

bool is_device_range(const void* p, size_t n) {
  Memory& m = memory();
  std::lock_guard lock(m.mutex);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = m.blocks.upper_bound(a);
  if (it == m.blocks.begin()) return false;
  --it;
  const size_t offset = a - it->first;
  return offset < it->second && n <= it->second - offset;
}

struct Handles {
  std::mutex mutex;
  std::set<cudaStream_t> streams;
  std::set<cudaEvent_t> events;
  std::map<const void*, int> max_dynamic_smem;  // cudaFuncSetAttribute
};
Handles& handles() {
  static Handles& h = *new Handles;
  return h;
}
bool valid_stream(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  std::lock_guard lock(handles().mutex);
  return handles().streams.count(s) != 0;
}
bool valid_event(cudaEvent_t e) {
  std::lock_guard lock(handles().mutex);
  return e && handles().events.count(e) != 0;
}

std::string check_config(const LaunchSpec& s) {
  const dim3 g = s.grid, b = s.block;
  if (!g.x || !g.y || !g.z || g.x > INT_MAX || g.y > 65535 || g.z > 65535)
    return format("grid (%u,%u,%u) is empty or larger than (2147483647,65535,65535)", g.x, g.y, g.z);
  if (!b.x || !b.y || !b.z || b.x > 1024 || b.y > 1024 || b.z > 64)
    return format("block (%u,%u,%u) is empty or larger than (1024,1024,64)", b.x, b.y, b.z);
  if (std::uint64_t(b.x) * b.y * b.z > 1024)
    return format("block (%u,%u,%u) has %llu threads, more than 1024", b.x, b.y, b.z,
                  (unsigned long long)b.x * b.y * b.z);
  size_t limit = kDefaultSmem;
  {
    std::lock_guard lock(handles().mutex);
    auto it = handles().max_dynamic_smem.find(s.kernel);
    if (it != handles().max_dynamic_smem.end()) limit = size_t(it->second);
  }
  if (s.smem > limit)
    return format(
        "%zu bytes of dynamic shared memory, more than this kernel's %zu (cudaFuncSetAttribute with "
        "cudaFuncAttributeMaxDynamicSharedMemorySize raises it, up to %zu)",
        s.smem, limit, kMaxSmemOptin);
  return "";
}

cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return record(cudaErrorInvalidValue);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice: ok = is_device_range(dst, count); break;
    case cudaMemcpyDeviceToHost: ok = is_device_range(src, count); break;
    case cudaMemcpyDeviceToDevice: ok = is_device_range(dst, count) && is_device_range(src, count); break;
    case cudaMemcpyHostToHost:
    case cudaMemcpyDefault: break;
    default: return record(cudaErrorInvalidMemcpyDirection);
  }
  // A device pointer that is not in one cudaMalloc'd block would fault on a GPU.
  if (!ok) return record(cudaErrorInvalidValue);
  std::memmove(dst, src, count);
  return cudaSuccess;
}

cudaError_t fill(void* p, int value, size_t count) {
  if (count == 0) return cudaSuccess;
  if (!is_device_range(p, count)) return record(cudaErrorInvalidValue);
  std::memset(p, value, count);
  return cudaSuccess;
}

}  // namespace

// ---- The emulator's interface --------------------------------------------------------------------

void set_seed(std::uint64_t seed) { settings().seed = seed; }
std::uint64_t seed() { return settings().seed.load(); }
void set_memory_limit(std::size_t bytes) { settings().memory_cap = bytes; }
std::string last_failure() {
  std::lock_guard lock(failure().mutex);
  return failure().message;
}

namespace detail {

std::uint64_t collective(Op op, unsigned mask, std::uint64_t value, int arg, int width,
                         const std::source_location& where) {
  Scheduler& s = sched();
  if (!s.current) {
    std::fprintf(stderr, "fastkern SIMT emulator: %s called outside a kernel at %s\n", op_name(op),
                 site(where).c_str());
    std::abort();
  }
  Thread& t = *s.current;
  if (is_warp_op(op)) {
    const unsigned lane = t.linear % 32;
    if (!(mask >> lane & 1))
      fail_thread(t, where, "%s with mask 0x%08x, which does not name the calling lane %u", op_name(op), mask, lane);
    if (width < 1 || width > 32 || (width & (width - 1)))
      fail_thread(t, where, "%s with width %d, not a power of two from 1 to 32", op_name(op), width);
  }
  t.op = op;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  t.where = where;
  t.state = State::Waiting;
  suspend(t);
  return t.result;
}

unsigned active_mask() {
  Scheduler& s = sched();
  if (!s.current) return 0;
  const unsigned base = s.current->linear & ~31u;
  unsigned mask = 0;
  for (unsigned j = 0; j < 32 && base + j < s.grid->nthreads; ++j)
    if (s.threads[base + j].state != State::Exited) mask |= 1u << j;
  return mask;
}

void trap(const std::source_location& where) {
  Scheduler& s = sched();
  if (!s.current) std::abort();
  fail_thread(*s.current, where, "__trap()");
}

void* dynamic_shared() {
  Grid* g = sched().grid;
  return g ? g->dynamic_smem : nullptr;
}

cudaError_t launch(const LaunchSpec& spec) {
  if (std::string why = check_config(spec); !why.empty()) {
    set_failure(format("kernel %s: invalid configuration: ", spec.name) + why);
    return record(cudaErrorInvalidConfiguration);
  }
  if (!valid_stream(spec.stream)) return record(cudaErrorInvalidResourceHandle);
  Scheduler& s = sched();
  if (s.owner.load() == std::this_thread::get_id()) {  // from a kernel: dynamic parallelism
    set_failure(format("kernel %s launched from a kernel, which the emulator does not support", spec.name));
    return record(cudaErrorNotSupported);
  }
  std::string failed;
  {
    std::lock_guard lock(s.launch_mutex);
    s.owner = std::this_thread::get_id();
    failed = run_grid(spec);
    s.owner = std::thread::id();
  }
  if (failed.empty()) return cudaSuccess;
  if (!settings().quiet) std::fprintf(stderr, "fastkern SIMT emulator: %s\n", failed.c_str());
  set_failure(std::move(failed));
  g_pending = cudaErrorLaunchFailure;
  return record(cudaErrorLaunchFailure);
}

}  // namespace detail
}  // namespace fk_emu

// ---- Runtime API ---------------------------------------------------------------------------------

using fk_emu::record;

long long clock64() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define FK_EMU_NAME(e) \
  case e: return #e;
    FK_EMU_NAME(cudaSuccess)
    FK_EMU_NAME(cudaErrorInvalidValue)
    FK_EMU_NAME(cudaErrorMemoryAllocation)
    FK_EMU_NAME(cudaErrorInitializationError)
    FK_EMU_NAME(cudaErrorInvalidConfiguration)
    FK_EMU_NAME(cudaErrorInvalidSymbol)
    FK_EMU_NAME(cudaErrorInvalidDevicePointer)
    FK_EMU_NAME(cudaErrorInvalidMemcpyDirection)
    FK_EMU_NAME(cudaErrorInvalidDeviceFunction)
    FK_EMU_NAME(cudaErrorNoDevice)
    FK_EMU_NAME(cudaErrorInvalidDevice)
    FK_EMU_NAME(cudaErrorInvalidResourceHandle)
    FK_EMU_NAME(cudaErrorNotReady)
    FK_EMU_NAME(cudaErrorIllegalAddress)
    FK_EMU_NAME(cudaErrorLaunchOutOfResources)
    FK_EMU_NAME(cudaErrorAssert)
    FK_EMU_NAME(cudaErrorLaunchFailure)
    FK_EMU_NAME(cudaErrorNotSupported)
    FK_EMU_NAME(cudaErrorUnknown)
#undef FK_EMU_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

cudaError_t cudaGetLastError() {
  cudaError_t e = fk_emu::t_last_error;
  fk_emu::t_last_error = cudaSuccess;
  if (e == cudaSuccess) return fk_emu::take_pending();
  int pending = e;
  fk_emu::g_pending.compare_exchange_strong(pending, cudaSuccess);  // reported here, not again at the next sync
  return e;
}

cudaError_t cudaPeekAtLastError() {
  return fk_emu::t_last_error != cudaSuccess ? fk_emu::t_last_error : cudaError_t(fk_emu::g_pending.load());
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "fastkern SIMT emulator");
  prop->totalGlobalMem = fk_emu::memory_total();
  prop->sharedMemPerBlock = fk_emu::kDefaultSmem;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024, prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = INT_MAX, prop->maxGridSize[1] = 65535, prop->maxGridSize[2] = 65535;
  prop->totalConstMem = 65536;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = fk_emu::kMultiprocessors;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->l2CacheSize = 50 << 20;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->sharedMemPerBlockOptin = fk_emu::kMaxSmemOptin;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return record(cudaErrorInvalidValue);
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device)) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(p.sharedMemPerBlock); break;
    case cudaDevAttrTotalConstantMemory: *value = int(p.totalConstMem); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = int(p.sharedMemPerMultiprocessor); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(p.sharedMemPerBlockOptin); break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

// Every launch, copy and fill is complete when its call returns.
cudaError_t cudaDeviceSynchronize() { return fk_emu::take_pending(); }
cudaError_t cudaDeviceReset() {
  fk_emu::take_pending();
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (!version) return record(cudaErrorInvalidValue);
  *version = 12080;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) { return cudaDriverGetVersion(version); }

cudaError_t cudaMalloc(void** devPtr, size_t size) {
  if (!devPtr) return record(cudaErrorInvalidValue);
  *devPtr = nullptr;
  if (size == 0) return cudaSuccess;
  fk_emu::Memory& m = fk_emu::memory();
  std::lock_guard lock(m.mutex);
  const size_t total = fk_emu::memory_total();
  if (size > total || fk_emu::rounded(size) > total - m.used) return record(cudaErrorMemoryAllocation);
  // malloc's own block, exactly size bytes long (ASan catches an access past it), 256-aligned
  // like cudaMalloc's, and filled with 0xFF: uninitialised device memory reads as NaN or -1.
  void* p = nullptr;
  if (posix_memalign(&p, 256, size) != 0) return record(cudaErrorMemoryAllocation);
  std::memset(p, 0xFF, size);
  m.blocks[reinterpret_cast<std::uintptr_t>(p)] = size;
  m.used += fk_emu::rounded(size);
  *devPtr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* devPtr) {
  if (!devPtr) return cudaSuccess;
  fk_emu::Memory& m = fk_emu::memory();
  std::lock_guard lock(m.mutex);
  auto it = m.blocks.find(reinterpret_cast<std::uintptr_t>(devPtr));
  if (it == m.blocks.end()) return record(cudaErrorInvalidValue);
  m.used -= fk_emu::rounded(it->second);
  m.blocks.erase(it);
  std::free(devPtr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  if (posix_memalign(ptr, 256, size) != 0) return record(cudaErrorMemoryAllocation);
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (!free || !total) return record(cudaErrorInvalidValue);
  fk_emu::Memory& m = fk_emu::memory();
  std::lock_guard lock(m.mutex);
  *total = fk_emu::memory_total();
  *free = *total > m.used ? *total - m.used : 0;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (cudaError_t e = fk_emu::take_pending()) return e;  // it synchronises, so it reports a failed kernel
  return fk_emu::copy(dst, src, count, kind);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  if (!fk_emu::valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return fk_emu::copy(dst, src, count, kind);
}

cudaError_t cudaMemset(void* devPtr, int value, size_t count) { return fk_emu::fill(devPtr, value, count); }

cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream) {
  if (!fk_emu::valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return fk_emu::fill(devPtr, value, count);
}

struct CUstream_st {
  unsigned flags;
};

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream || flags > cudaStreamNonBlocking) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  std::lock_guard lock(fk_emu::handles().mutex);
  fk_emu::handles().streams.insert(*stream);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  {
    std::lock_guard lock(fk_emu::handles().mutex);
    if (!fk_emu::handles().streams.erase(stream)) return record(cudaErrorInvalidResourceHandle);
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!fk_emu::valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return fk_emu::take_pending();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return fk_emu::valid_stream(stream) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!fk_emu::valid_stream(stream) || !fk_emu::valid_event(event)) return record(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

struct CUevent_st {
  unsigned flags;
  bool recorded = false;
  std::chrono::steady_clock::time_point when{};
};

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event || flags > (cudaEventBlockingSync | cudaEventDisableTiming)) return record(cudaErrorInvalidValue);
  *event = new CUevent_st{flags};
  std::lock_guard lock(fk_emu::handles().mutex);
  fk_emu::handles().events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  {
    std::lock_guard lock(fk_emu::handles().mutex);
    if (!fk_emu::handles().events.erase(event)) return record(cudaErrorInvalidResourceHandle);
  }
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!fk_emu::valid_event(event) || !fk_emu::valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  event->recorded = true;
  event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (!fk_emu::valid_event(event)) return record(cudaErrorInvalidResourceHandle);
  return fk_emu::take_pending();
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  return fk_emu::valid_event(event) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return record(cudaErrorInvalidValue);
  if (!fk_emu::valid_event(start) || !fk_emu::valid_event(end) || !start->recorded || !end->recorded ||
      ((start->flags | end->flags) & cudaEventDisableTiming))
    return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return record(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || size_t(value) > fk_emu::kMaxSmemOptin)
    return record(cudaErrorInvalidValue);
  std::lock_guard lock(fk_emu::handles().mutex);
  fk_emu::handles().max_dynamic_smem[func] = value;
  return cudaSuccess;
}

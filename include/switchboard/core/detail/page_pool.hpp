// switchboard/core/detail/page_pool.hpp
//
// Fixed-size units of whole memory pages, for per-request state that a connection holds only while it is busy
// (the HTTP server's exchange: parser, request, output queue and read buffer). Why not the general allocator: a
// server that accepts many connections interleaves their long-lived objects (socket state, connection object) with this
// short-lived state on the heap; when thousands of connections go idle at once and free it, the heap is left
// full of holes a few KiB wide that the allocator cannot give back to the operating system, so an idle
// connection keeps costing what a busy one did (measured: 6 KiB per idle keep-alive connection instead of 1).
//
// Units here come from their own mappings (slabs of several units). A released unit stays "hot" (its pages kept)
// until `trim`, which its owner calls periodically (the HTTP server: every tick of its clock): a unit that stayed
// released for a whole interval between two calls has its pages handed back with madvise(MADV_DONTNEED). So a
// unit released and taken again soon (a long poll answered, then parked again) costs no page fault and no system
// call, and resident memory still follows the number of busy connections once the load has passed, whatever the
// order of allocation. A cold unit is reused after the hot ones and before a new slab is mapped (its pages come
// back zero-filled on first touch). Slabs are unmapped when the pool is destroyed: every unit must be released by
// then. Where mmap is not available, units are plain aligned allocations and `trim` frees them.
//
// One thread: no locking (each server shard has its own pool).
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <new>
#include <stdexcept>
#include <vector>

#include <switchboard/core/detail/reuse_stack.hpp>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define SWITCHBOARD_HAS_MMAP 1
#else
#define SWITCHBOARD_HAS_MMAP 0
#endif

namespace switchboard::detail {

class page_pool {
 public:
  /// Units of at least `unit_size` bytes (rounded up to whole pages).
  explicit page_pool(std::size_t unit_size) : unit_size_(round_to_pages(unit_size)) {}
  page_pool(const page_pool&) = delete;
  page_pool& operator=(const page_pool&) = delete;
  ~page_pool() {
#if SWITCHBOARD_HAS_MMAP
    for (void* slab : slabs_) ::munmap(slab, slab_bytes());
#else
    for (void* unit : hot_.items()) ::operator delete(unit, std::align_val_t{alignment});
#endif
  }

  /// The size of every unit, a multiple of the page size.
  std::size_t unit_size() const noexcept { return unit_size_; }

  /// A unit, aligned to a page: the most recently released one first. Throws std::bad_alloc when no memory is left.
  void* acquire() {
    if (!hot_.empty()) return hot_.pop();
#if SWITCHBOARD_HAS_MMAP
    if (cold_.empty()) map_slab();
    return pop(cold_);
#else
    reserve_room(hot_, ++allocated_);  // so that release() never allocates (it runs in noexcept paths)
    return ::operator new(unit_size_, std::align_val_t{alignment});
#endif
  }

  /// Gives a unit back. Its content is lost (it keeps its pages until a `trim` finds it unused).
  void release(void* unit) noexcept {
    hot_.push(unit);  // within the capacity reserved when the unit was made
  }

  /// Hands back the pages of the units that stayed released since the previous call: the oldest of the hot units,
  /// as many as the fewest there were since then.
  void trim() noexcept {
    hot_.trim([this](void* unit) { discard(unit); });
  }

  /// Gives a unit back and its pages to the system at once: for an owner that knows it went unused for a whole
  /// interval already (it kept its own released objects in the unit, see reuse_stack).
  void discard(void* unit) noexcept {
#if SWITCHBOARD_HAS_MMAP
    ::madvise(unit, unit_size_, MADV_DONTNEED);  // the pages go back to the system; the range stays mapped
    cold_.push_back(unit);                        // within the capacity reserved by map_slab
#else
    ::operator delete(unit, std::align_val_t{alignment});
    --allocated_;
#endif
  }

  /// Released units that still hold their pages (for tests).
  std::size_t hot() const noexcept { return hot_.size(); }

 private:
  static constexpr std::size_t alignment = 4096;
  static constexpr std::size_t min_slab_bytes = 256 * 1024;

  static std::size_t page_size() noexcept {
#if SWITCHBOARD_HAS_MMAP
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
#else
    return alignment;
#endif
  }
  static std::size_t round_to_pages(std::size_t n) {
    if (n == 0) throw std::invalid_argument("page_pool: unit size must be positive");
    const std::size_t page = page_size();
    if (n > std::numeric_limits<std::size_t>::max() - (page - 1)) throw std::length_error("page_pool: unit too large");
    return (n + page - 1) / page * page;
  }
  std::size_t units_per_slab() const noexcept { return std::max<std::size_t>(1, min_slab_bytes / unit_size_); }
  std::size_t slab_bytes() const noexcept { return units_per_slab() * unit_size_; }

  // Grows geometrically: a list grown one slab at a time would leave a trail of freed buffers in the heap.
  template <class List>
  static void reserve_room(List& list, std::size_t wanted) {
    if (wanted > list.capacity()) list.reserve(std::max(wanted, 2 * list.capacity()));
  }

  static void* pop(std::vector<void*>& list) noexcept {
    void* unit = list.back();
    list.pop_back();
    return unit;
  }

#if SWITCHBOARD_HAS_MMAP
  void map_slab() {
    // Room in the lists first, so that release() and trim() never allocate (they run in noexcept paths).
    const std::size_t units = (slabs_.size() + 1) * units_per_slab();
    reserve_room(slabs_, slabs_.size() + 1);
    reserve_room(cold_, units);
    reserve_room(hot_, units);
    void* slab = ::mmap(nullptr, slab_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slab == MAP_FAILED) throw std::bad_alloc();
    slabs_.push_back(slab);
    auto* bytes = static_cast<char*>(slab);
    for (std::size_t i = units_per_slab(); i-- > 0;) cold_.push_back(bytes + i * unit_size_);
  }

  std::vector<void*> slabs_;
  std::vector<void*> cold_;  // released units whose pages went back to the system
#endif
#if !SWITCHBOARD_HAS_MMAP
  std::size_t allocated_ = 0;  // units made and not freed
#endif
  std::size_t unit_size_;
  reuse_stack<void*> hot_;  // released units that kept their pages
};

}  // namespace switchboard::detail

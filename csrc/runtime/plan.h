// A compiled execution plan: an immutable list of kernels over slots whose
// memory is decided ahead of time (graph inputs and outputs are the caller's
// buffers, constants are owned or borrowed by the plan, every intermediate
// lives at a fixed offset of an arena). Each run borrows an arena from a
// pool, so one plan serves several threads at once.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/aligned_buffer.h"
#include "runtime/kernel.h"
#include "runtime/thread_pool.h"

namespace pyengine {

class Plan {
 public:
  explicit Plan(std::shared_ptr<ThreadPool> pool);

  // Slots. Each returns the slot id used by add_node.
  int add_input(int index, const TensorDesc& desc);
  int add_output(int index, const TensorDesc& desc);
  int add_constant(const TensorDesc& desc, const void* data);  // data is copied
  // The plan reads `data` in place (never written) and keeps `owner` alive as
  // long as it does: the session's constants and the plan share one copy of
  // the weights instead of two. `data` must be kBorrowAlign-aligned (what
  // malloc and NumPy give); kernels assume no more of any input (graph inputs
  // are the caller's arrays too) and pack what they want aligned.
  static constexpr size_t kBorrowAlign = 16;
  int add_borrowed_constant(const TensorDesc& desc, const void* data, std::shared_ptr<const void> owner);
  int add_arena(size_t offset, const TensorDesc& desc);
  // The same memory as slot `base` seen with another shape (Reshape, Flatten,
  // Squeeze... cost nothing: they are views).
  int add_view(int base, const TensorDesc& desc);

  // Builds the kernel now (pre-packing constant weights). Input slots of
  // constants expose their data to the kernel through TensorDesc::const_data.
  void add_node(NodeSpec spec, const std::vector<int>& input_slots, const std::vector<int>& output_slots);

  // Whether the most recently added node reads its input `k` when it runs
  // (false: its kernel keeps a packed copy of that constant).
  bool last_node_reads_input(size_t k) const;
  // Frees (or, borrowed, lets go of) a constant no kernel reads at run
  // time; throws if some node still reads it.
  void release_constant(int slot);

  // Total intermediate memory; the per-node scratch region is appended to it.
  void finalize(size_t arena_bytes);

  // Runs every node. `inputs`/`outputs` hold one pointer per graph input and
  // output, sized as declared by add_input/add_output.
  void run(const std::vector<const void*>& inputs, const std::vector<void*>& outputs);

  // Per-node timing (SessionOptions.enable_profiling). Off by default: a run
  // then reads one flag and no clock. While on, every run appends one event
  // per node; take_profile() hands them over and forgets them.
  struct ProfileEvent {
    size_t step;
    int64_t start_ns, duration_ns;  // steady clock
  };
  void set_profiling(bool on) { profiling_.store(on, std::memory_order_relaxed); }
  std::vector<ProfileEvent> take_profile();
  const std::string& step_name(size_t i) const { return steps_.at(i).name; }
  const std::string& step_op_type(size_t i) const { return steps_.at(i).op_type; }
  std::string step_path(size_t i) const { return steps_.at(i).kernel->path(); }

  size_t arena_bytes() const { return arena_bytes_; }
  size_t scratch_bytes() const { return scratch_bytes_; }
  size_t num_nodes() const { return steps_.size(); }
  // Bytes of constant data the plan copied into its own buffers, and bytes it
  // reads from borrowed memory (packed kernel weights are not counted).
  size_t owned_constant_bytes() const;
  size_t borrowed_constant_bytes() const;
  const TensorDesc& input_desc(int index) const { return input_descs_.at(index); }
  const TensorDesc& output_desc(int index) const { return output_descs_.at(index); }
  size_t num_inputs() const { return input_descs_.size(); }
  size_t num_outputs() const { return output_descs_.size(); }

 private:
  enum class SlotKind { Input, Output, Constant, Arena, View };
  struct Slot {
    SlotKind kind;
    size_t index;  // input/output index, constant index, arena offset or base slot
    TensorDesc desc;
  };
  struct Step {
    std::string name, op_type;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> in, out;  // slot ids, -1 for an absent optional input
  };
  struct RunState {
    AlignedBuffer arena;
    std::vector<void*> slot_ptrs;
    std::vector<const void*> in_ptrs;
    std::vector<void*> out_ptrs;
  };

  int add_slot(Slot s);
  std::unique_ptr<RunState> acquire_state();
  void release_state(std::unique_ptr<RunState> s);

  std::shared_ptr<ThreadPool> pool_;
  std::vector<Slot> slots_;
  struct Constant {
    AlignedBuffer owned;                 // empty when borrowed
    const void* data = nullptr;
    size_t nbytes = 0;
    std::shared_ptr<const void> owner;  // keeps borrowed memory alive
  };
  int add_constant_slot(const TensorDesc& desc, Constant c);

  std::vector<Constant> constants_;
  std::vector<Step> steps_;
  std::vector<TensorDesc> input_descs_, output_descs_;
  size_t arena_bytes_ = 0, scratch_bytes_ = 0, max_arity_ = 0;
  bool finalized_ = false;

  std::atomic<bool> profiling_{false};
  std::mutex profile_mu_;
  std::vector<ProfileEvent> profile_;

  std::mutex states_mu_;
  std::vector<std::unique_ptr<RunState>> free_states_;
};

}  // namespace pyengine

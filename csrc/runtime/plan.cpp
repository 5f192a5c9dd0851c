#include "runtime/plan.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace pyengine {

namespace {
size_t align_up(size_t n) { return (n + AlignedBuffer::kAlign - 1) / AlignedBuffer::kAlign * AlignedBuffer::kAlign; }
}  // namespace

Plan::Plan(std::shared_ptr<ThreadPool> pool) : pool_(std::move(pool)) {
  if (!pool_) pool_ = std::make_shared<ThreadPool>(1);
}

int Plan::add_slot(Slot s) {
  if (finalized_) throw std::logic_error("plan already finalized");
  slots_.push_back(std::move(s));
  return static_cast<int>(slots_.size() - 1);
}

int Plan::add_input(int index, const TensorDesc& desc) {
  if (index < 0) throw std::invalid_argument("negative input index");
  if (input_descs_.size() <= static_cast<size_t>(index)) input_descs_.resize(index + 1);
  input_descs_[index] = desc;
  return add_slot({SlotKind::Input, static_cast<size_t>(index), desc});
}

int Plan::add_output(int index, const TensorDesc& desc) {
  if (index < 0) throw std::invalid_argument("negative output index");
  if (output_descs_.size() <= static_cast<size_t>(index)) output_descs_.resize(index + 1);
  output_descs_[index] = desc;
  return add_slot({SlotKind::Output, static_cast<size_t>(index), desc});
}

int Plan::add_constant_slot(const TensorDesc& desc, Constant c) {
  if (finalized_) throw std::logic_error("plan already finalized");
  TensorDesc d = desc;
  d.const_data = c.data;
  constants_.push_back(std::move(c));
  return add_slot({SlotKind::Constant, constants_.size() - 1, d});
}

int Plan::add_constant(const TensorDesc& desc, const void* data) {
  Constant c;
  c.owned.resize(std::max<size_t>(desc.nbytes(), 1));
  if (desc.nbytes()) std::memcpy(c.owned.data(), data, desc.nbytes());
  c.data = c.owned.data();
  c.nbytes = desc.nbytes();
  return add_constant_slot(desc, std::move(c));
}

int Plan::add_borrowed_constant(const TensorDesc& desc, const void* data, std::shared_ptr<const void> owner) {
  if (!data || reinterpret_cast<uintptr_t>(data) % kBorrowAlign)
    throw std::invalid_argument("borrowed constants must be " + std::to_string(kBorrowAlign) + "-byte aligned");
  Constant c;
  c.data = data;
  c.nbytes = desc.nbytes();
  c.owner = std::move(owner);
  return add_constant_slot(desc, std::move(c));
}

size_t Plan::owned_constant_bytes() const {
  size_t n = 0;
  for (const Constant& c : constants_)
    if (!c.owner) n += c.nbytes;
  return n;
}

size_t Plan::borrowed_constant_bytes() const {
  size_t n = 0;
  for (const Constant& c : constants_)
    if (c.owner) n += c.nbytes;
  return n;
}

int Plan::add_arena(size_t offset, const TensorDesc& desc) {
  if (offset % AlignedBuffer::kAlign) throw std::invalid_argument("arena offset must be 64-byte aligned");
  return add_slot({SlotKind::Arena, offset, desc});
}

int Plan::add_view(int base, const TensorDesc& desc) {
  if (base < 0 || base >= static_cast<int>(slots_.size())) throw std::invalid_argument("bad view base slot");
  const Slot& b = slots_[base];
  if (desc.nbytes() > b.desc.nbytes()) throw std::invalid_argument("view is larger than its base");
  TensorDesc d = desc;
  d.const_data = b.desc.const_data;
  return add_slot({SlotKind::View, static_cast<size_t>(base), d});
}

void Plan::add_node(NodeSpec spec, const std::vector<int>& input_slots, const std::vector<int>& output_slots) {
  if (finalized_) throw std::logic_error("plan already finalized");
  auto check = [&](int id) {
    if (id < -1 || id >= static_cast<int>(slots_.size())) throw std::invalid_argument("bad slot id");
  };
  spec.inputs.clear();
  spec.outputs.clear();
  for (int id : input_slots) {
    check(id);
    spec.inputs.push_back(id < 0 ? TensorDesc{} : slots_[id].desc);
  }
  for (int id : output_slots) {
    check(id);
    if (id < 0) throw std::invalid_argument("outputs need a slot");
    spec.outputs.push_back(slots_[id].desc);
  }
  spec.num_threads = pool_->size();
  Step step;
  step.name = spec.name;
  step.op_type = spec.op_type;
  try {
    step.kernel = create_kernel(spec);
  } catch (const std::exception& e) {
    throw KernelError("node '" + spec.name + "' (" + spec.op_type + "): " + e.what());
  }
  step.in = input_slots;
  step.out = output_slots;
  scratch_bytes_ = std::max(scratch_bytes_, align_up(step.kernel->scratch_bytes()));
  max_arity_ = std::max({max_arity_, input_slots.size(), output_slots.size()});
  steps_.push_back(std::move(step));
}

void Plan::finalize(size_t arena_bytes) {
  arena_bytes_ = align_up(arena_bytes);
  for (const Slot& s : slots_) {
    if (s.kind == SlotKind::Arena && s.index + s.desc.nbytes() > arena_bytes_)
      throw std::invalid_argument("arena slot exceeds the arena size");
  }
  finalized_ = true;
}

std::unique_ptr<Plan::RunState> Plan::acquire_state() {
  {
    std::lock_guard<std::mutex> lk(states_mu_);
    if (!free_states_.empty()) {
      auto s = std::move(free_states_.back());
      free_states_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<RunState>();
  s->arena.resize(arena_bytes_ + scratch_bytes_);
  s->slot_ptrs.assign(slots_.size(), nullptr);
  s->in_ptrs.resize(max_arity_);
  s->out_ptrs.resize(max_arity_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& sl = slots_[i];
    if (sl.kind == SlotKind::Constant) s->slot_ptrs[i] = const_cast<void*>(constants_[sl.index].data);
    else if (sl.kind == SlotKind::Arena) s->slot_ptrs[i] = static_cast<char*>(s->arena.data()) + sl.index;
  }
  return s;
}

void Plan::release_state(std::unique_ptr<RunState> s) {
  std::lock_guard<std::mutex> lk(states_mu_);
  free_states_.push_back(std::move(s));
}

namespace {
int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Plan::run(const std::vector<const void*>& inputs, const std::vector<void*>& outputs) {
  if (!finalized_) throw std::logic_error("plan not finalized");
  if (inputs.size() != input_descs_.size() || outputs.size() != output_descs_.size())
    throw std::invalid_argument("wrong number of plan inputs or outputs");
  std::unique_ptr<RunState> st = acquire_state();
  struct Returner {
    Plan* plan;
    std::unique_ptr<RunState>& st;
    ~Returner() { plan->release_state(std::move(st)); }
  } returner{this, st};

  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& sl = slots_[i];
    if (sl.kind == SlotKind::Input) st->slot_ptrs[i] = const_cast<void*>(inputs[sl.index]);
    else if (sl.kind == SlotKind::Output) st->slot_ptrs[i] = outputs[sl.index];
    else if (sl.kind == SlotKind::View) st->slot_ptrs[i] = st->slot_ptrs[sl.index];  // base id < i
  }
  void* scratch = static_cast<char*>(st->arena.data()) + arena_bytes_;
  const bool profiling = profiling_.load(std::memory_order_relaxed);
  std::vector<ProfileEvent> events;
  if (profiling) events.reserve(steps_.size());
  for (size_t s = 0; s < steps_.size(); ++s) {
    Step& step = steps_[s];
    for (size_t k = 0; k < step.in.size(); ++k) st->in_ptrs[k] = step.in[k] < 0 ? nullptr : st->slot_ptrs[step.in[k]];
    for (size_t k = 0; k < step.out.size(); ++k) st->out_ptrs[k] = st->slot_ptrs[step.out[k]];
    KernelIO io{st->in_ptrs.data(), st->out_ptrs.data(), scratch, pool_.get()};
    const int64_t start = profiling ? now_ns() : 0;
    try {
      step.kernel->run(io);
    } catch (const std::exception& e) {
      throw KernelError("node '" + step.name + "' (" + step.op_type + "): " + e.what());
    }
    if (profiling) events.push_back({s, start, now_ns() - start});
  }
  if (profiling) {
    std::lock_guard<std::mutex> lk(profile_mu_);
    profile_.insert(profile_.end(), events.begin(), events.end());
  }
}

bool Plan::last_node_reads_input(size_t k) const {
  if (steps_.empty()) throw std::logic_error("no node added yet");
  return steps_.back().kernel->reads_constant_at_run(k);
}

void Plan::release_constant(int slot) {
  if (slot < 0 || static_cast<size_t>(slot) >= slots_.size() || slots_[slot].kind != SlotKind::Constant)
    throw std::invalid_argument("release_constant: not a constant slot");
  for (const Step& step : steps_)
    for (size_t k = 0; k < step.in.size(); ++k)
      if (step.in[k] == slot && step.kernel->reads_constant_at_run(k))
        throw std::logic_error("release_constant: node '" + step.name + "' reads it at run time");
  Constant& c = constants_[slots_[slot].index];
  c.owned.resize(0);
  c.owner.reset();
  c.data = nullptr;
  c.nbytes = 0;
}

std::vector<Plan::ProfileEvent> Plan::take_profile() {
  std::lock_guard<std::mutex> lk(profile_mu_);
  std::vector<ProfileEvent> out;
  out.swap(profile_);
  return out;
}

}  // namespace pyengine

// pybind11 glue only: converts Python values to the runtime's types and
// releases the GIL around Plan::run. No math here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels/dispatch.h"
#include "runtime/plan.h"

#include <cstdint>

namespace py = pybind11;
using namespace pyengine;

namespace {

Shape to_shape(const std::vector<int64_t>& dims) {
  for (int64_t d : dims)
    if (d < 0) throw std::invalid_argument("negative dimension in " + shape_str(dims));
  return dims;
}

TensorDesc make_desc(int dtype, const std::vector<int64_t>& shape) {
  TensorDesc d;
  d.dtype = static_cast<DType>(dtype);
  if (dtype_size(d.dtype) == 0) throw std::invalid_argument("unsupported element type code " + std::to_string(dtype));
  d.shape = to_shape(shape);
  return d;
}

AttrValue to_attr(const std::string& name, const py::handle& v) {
  if (py::isinstance<py::bool_>(v)) return static_cast<int64_t>(v.cast<bool>());
  if (py::isinstance<py::int_>(v)) return v.cast<int64_t>();
  if (py::isinstance<py::float_>(v)) return v.cast<double>();
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bytes>(v)) return v.cast<std::string>();
  if (py::isinstance<py::list>(v) || py::isinstance<py::tuple>(v)) {
    auto seq = v.cast<py::sequence>();
    bool all_int = true;
    for (auto item : seq)
      if (!py::isinstance<py::int_>(item) && !py::isinstance<py::bool_>(item)) all_int = false;
    if (all_int) return v.cast<std::vector<int64_t>>();
    return v.cast<std::vector<double>>();
  }
  throw std::invalid_argument("attribute '" + name + "' has a type the native kernels cannot take");
}

void check_buffer(const py::array& a, const TensorDesc& want, const char* what, size_t i) {
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(what) + " " + std::to_string(i) + " must be C-contiguous");
  if (static_cast<size_t>(a.nbytes()) != want.nbytes())
    throw std::invalid_argument(std::string(what) + " " + std::to_string(i) + " has " + std::to_string(a.nbytes()) +
                                " bytes, the plan expects " + std::to_string(want.nbytes()) + " for shape " +
                                shape_str(want.shape));
}

// A reference to a NumPy array that C++ can hold: released under the GIL
// (plans die from Python, but the last reference may drop on any thread).
std::shared_ptr<const void> keep_alive(const py::array& a) {
  auto* ref = new py::object(a);
  return std::shared_ptr<const void>(ref, [](const void* p) {
    auto* obj = static_cast<py::object*>(const_cast<void*>(p));
    if (!Py_IsInitialized()) {  // interpreter gone: nothing to release
      obj->release();
      delete obj;
      return;
    }
    py::gil_scoped_acquire gil;
    delete obj;
  });
}

}  // namespace

namespace pyengine {
// Raw kernel entry points for the kernel tests and benchmarks (testing.cpp).
void bind_testing(py::module_& m);
}  // namespace pyengine

PYBIND11_MODULE(_engine, m) {
  m.doc() = "pyengine native runtime: compiled plans, kernels and CPU dispatch";

  py::register_exception<KernelError>(m, "KernelError", PyExc_ValueError);

  py::class_<ThreadPool, std::shared_ptr<ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("num_threads"))
      .def_property_readonly("size", &ThreadPool::size);

  py::class_<Plan, std::shared_ptr<Plan>>(m, "Plan")
      .def(py::init<std::shared_ptr<ThreadPool>>(), py::arg("pool"))
      .def("add_input", [](Plan& p, int index, int dtype, std::vector<int64_t> shape) {
        return p.add_input(index, make_desc(dtype, shape));
      })
      .def("add_output", [](Plan& p, int index, int dtype, std::vector<int64_t> shape) {
        return p.add_output(index, make_desc(dtype, shape));
      })
      .def("add_arena", [](Plan& p, size_t offset, int dtype, std::vector<int64_t> shape) {
        return p.add_arena(offset, make_desc(dtype, shape));
      })
      .def("add_view", [](Plan& p, int base, int dtype, std::vector<int64_t> shape) {
        return p.add_view(base, make_desc(dtype, shape));
      })
      .def(
          "add_constant",
          [](Plan& p, py::array array, int dtype, bool borrow) {
            py::array c = py::array::ensure(array, py::array::c_style);
            std::vector<int64_t> shape(c.shape(), c.shape() + c.ndim());
            TensorDesc d = make_desc(dtype, shape);
            if (static_cast<size_t>(c.nbytes()) != d.nbytes())
              throw std::invalid_argument("constant bytes do not match its dtype and shape");
            if (borrow && d.nbytes() && reinterpret_cast<uintptr_t>(c.data()) % Plan::kBorrowAlign == 0)
              return p.add_borrowed_constant(d, c.data(), keep_alive(c));
            return p.add_constant(d, c.data());
          },
          py::arg("array"), py::arg("dtype"), py::arg("borrow") = false,
          "borrow=True: read an aligned array in place (kept alive by the plan) instead of copying it")
      .def("add_node", [](Plan& p, const std::string& op_type, const std::string& name, py::dict attrs,
                          std::vector<int> in_slots, std::vector<int> out_slots) {
        NodeSpec spec;
        spec.op_type = op_type;
        spec.name = name;
        for (auto kv : attrs) {
          std::string key = kv.first.cast<std::string>();
          spec.attrs.set(key, to_attr(key, kv.second));
        }
        p.add_node(std::move(spec), in_slots, out_slots);
      })
      .def("last_node_reads_input", &Plan::last_node_reads_input, py::arg("k"))
      .def("release_constant", &Plan::release_constant, py::arg("slot"))
      .def("finalize", &Plan::finalize)
      .def_property_readonly("arena_bytes", &Plan::arena_bytes)
      .def_property_readonly("scratch_bytes", &Plan::scratch_bytes)
      .def_property_readonly("num_nodes", &Plan::num_nodes)
      .def("set_profiling", &Plan::set_profiling, py::arg("on"))
      .def(
          "node_paths",
          [](Plan& p) {
            py::list out;
            for (size_t i = 0; i < p.num_nodes(); ++i)
              out.append(py::make_tuple(p.step_name(i), p.step_op_type(i), p.step_path(i)));
            return out;
          },
          "[(node name, op type, implementation path or '')] in run order")
      .def(
          "take_profile",
          [](Plan& p) {
            py::list out;
            for (const Plan::ProfileEvent& e : p.take_profile())
              out.append(py::make_tuple(p.step_name(e.step), p.step_op_type(e.step), e.start_ns, e.duration_ns));
            return out;
          },
          "[(node name, op type, start ns, duration ns)] recorded since the last call, in run order")
      .def_property_readonly("owned_constant_bytes", &Plan::owned_constant_bytes)
      .def_property_readonly("borrowed_constant_bytes", &Plan::borrowed_constant_bytes)
      .def("run", [](Plan& p, const std::vector<py::array>& inputs, std::vector<py::array> outputs) {
        if (inputs.size() != p.num_inputs() || outputs.size() != p.num_outputs())
          throw std::invalid_argument("plan expects " + std::to_string(p.num_inputs()) + " inputs and " +
                                      std::to_string(p.num_outputs()) + " outputs");
        std::vector<const void*> in_ptrs(inputs.size());
        std::vector<void*> out_ptrs(outputs.size());
        for (size_t i = 0; i < inputs.size(); ++i) {
          check_buffer(inputs[i], p.input_desc(static_cast<int>(i)), "input", i);
          in_ptrs[i] = inputs[i].data();
        }
        for (size_t i = 0; i < outputs.size(); ++i) {
          check_buffer(outputs[i], p.output_desc(static_cast<int>(i)), "output", i);
          if (!outputs[i].writeable()) throw std::invalid_argument("output buffers must be writeable");
          out_ptrs[i] = outputs[i].mutable_data();
        }
        py::gil_scoped_release release;
        p.run(in_ptrs, out_ptrs);
      });

  m.def("set_isa", &set_isa, py::arg("name"), "Force the instruction set for kernels built from now on.");
  m.def("current_isa", &current_isa);
  m.def("available_isas", &available_isas);
  m.def("registered_ops", &registered_ops);
  m.def("default_num_threads", &ThreadPool::default_num_threads);

  py::module_ testing = m.def_submodule("testing", "direct access to dispatched kernels, for tests and benchmarks");
  bind_testing(testing);
}

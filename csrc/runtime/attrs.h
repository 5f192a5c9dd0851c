// Node attributes as the kernels see them: already normalized by Python
// (opset differences resolved, defaults filled in where the op needs them).
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace pyengine {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

class Attrs {
 public:
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  int64_t get_int(const std::string& name, int64_t dflt) const {
    auto it = values_.find(name);
    if (it == values_.end()) return dflt;
    if (auto p = std::get_if<int64_t>(&it->second)) return *p;
    if (auto p = std::get_if<double>(&it->second)) return static_cast<int64_t>(*p);
    throw std::invalid_argument("attribute '" + name + "' must be an int");
  }
  double get_float(const std::string& name, double dflt) const {
    auto it = values_.find(name);
    if (it == values_.end()) return dflt;
    if (auto p = std::get_if<double>(&it->second)) return *p;
    if (auto p = std::get_if<int64_t>(&it->second)) return static_cast<double>(*p);
    throw std::invalid_argument("attribute '" + name + "' must be a float");
  }
  std::string get_string(const std::string& name, const std::string& dflt) const {
    auto it = values_.find(name);
    if (it == values_.end()) return dflt;
    if (auto p = std::get_if<std::string>(&it->second)) return *p;
    throw std::invalid_argument("attribute '" + name + "' must be a string");
  }
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> dflt = {}) const {
    auto it = values_.find(name);
    if (it == values_.end()) return dflt;
    if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return *p;
    if (auto p = std::get_if<int64_t>(&it->second)) return {*p};
    if (auto p = std::get_if<std::vector<double>>(&it->second)) {
      if (p->empty()) return {};
    }
    throw std::invalid_argument("attribute '" + name + "' must be a list of ints");
  }
  std::vector<double> get_floats(const std::string& name, std::vector<double> dflt = {}) const {
    auto it = values_.find(name);
    if (it == values_.end()) return dflt;
    if (auto p = std::get_if<std::vector<double>>(&it->second)) return *p;
    if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return std::vector<double>(p->begin(), p->end());
    if (auto p = std::get_if<double>(&it->second)) return {*p};
    throw std::invalid_argument("attribute '" + name + "' must be a list of floats");
  }

 private:
  std::map<std::string, AttrValue> values_;
};

}  // namespace pyengine

#include "embed/embedder_registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "embed/static_embedder.h"

namespace thinkmesh::embed {
namespace {

std::unique_ptr<Embedder> make_static_embedder(gguf::File file, const EmbedOptions& options) {
  return std::make_unique<StaticEmbedder>(std::move(file), options);
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, EmbedderFactory, std::less<>> factories;
};

// The built-in table; further entries arrive through register_embedder_factory.
Registry& registry() {
  static Registry* r = [] {
    auto* created = new Registry;
    created->factories.emplace(std::string(kWordvecArchitecture), &make_static_embedder);
    return created;
  }();
  return *r;
}

}  // namespace

void register_embedder_factory(std::string architecture, EmbedderFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.factories[std::move(architecture)] = factory;
}

EmbedderFactory find_embedder_factory(std::string_view architecture) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.factories.find(architecture);
  return it == r.factories.end() ? nullptr : it->second;
}

std::vector<std::string> registered_architectures() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

}  // namespace thinkmesh::embed

#include "proxy/net/edge_wait.h"

#if PGCUTOVER_EDGE_WAIT

namespace pgcutover::proxy::edge_wait::detail {
namespace {

// The reactor's per-descriptor flag and lock are private to it. An explicit instantiation may
// name private members ([temp.spec.general]: access checking does not apply to its arguments),
// and hands them out here through a friend function found by argument-dependent lookup.
template <auto Member, class Tag>
struct Grant {
  friend constexpr auto member(Tag) { return Member; }
};
struct TrySpeculative {
  friend constexpr auto member(TrySpeculative);
};
struct DescriptorMutex {
  friend constexpr auto member(DescriptorMutex);
};
template struct Grant<&Reactor::descriptor_state::try_speculative_, TrySpeculative>;
template struct Grant<&Reactor::descriptor_state::mutex_, DescriptorMutex>;

}  // namespace

void clear_read_flag(Reactor::per_descriptor_data state) {
  if (!state) return;  // closed
  // The same lock the reactor takes when an edge sets the flag: an edge is either seen by the
  // read that emptied the socket, or sets the flag after this.
  auto& mutex = state->*member(DescriptorMutex{});
  mutex.lock();
  (state->*member(TrySpeculative{}))[Reactor::read_op] = false;
  mutex.unlock();
}

Reactor& reactor_of(boost::asio::execution_context& context) {
  return boost::asio::use_service<Reactor>(context);
}

}  // namespace pgcutover::proxy::edge_wait::detail

#endif

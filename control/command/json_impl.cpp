// Boost.JSON's compiled part, built once here: Debian ships Boost.JSON without a shared
// library for 1.81, and the control plane is its only user. (If another library in the tree
// starts including <boost/json/src.hpp>, move this to a shared place so it exists once.)
#include <boost/json/src.hpp>

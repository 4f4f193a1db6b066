// Two translation units include every header; linking them catches a function defined in a header without
// `inline`. This one also holds main.
#include <switchboard/switchboard.hpp>

int odr_b();

int main() { return odr_b(); }

#include <switchboard/switchboard.hpp>

int odr_b() { return switchboard::version_major >= 0 ? 0 : 1; }

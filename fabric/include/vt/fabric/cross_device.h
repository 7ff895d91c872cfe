#pragma once
// Cross-device ops inside a Fabric (Note [Cross-device calls] in vt/core/dispatcher.h): the hook that runs an
// op whose operands live on several GPUs, following the route table (vt/fabric/routes.h).
namespace vt::fabric {
// Installs the Fabric's hook into the dispatcher (idempotent; done when the fabric module loads). Pairs no open
// Fabric holds still raise torch's mixed-device error.
void install_cross_device_hook();
}  // namespace vt::fabric

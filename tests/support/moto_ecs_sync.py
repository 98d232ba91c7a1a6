"""moto runs Step Functions' `ecs:runTask.sync` integration, but not as written for AWS: its port of the
interpreter (moto/stepfunctions/parser, from LocalStack) keeps the ECS integration and its .sync poller, and
leaves the two methods that map the state's PascalCase fields to boto3's camelCase and back as stubs
(StateTaskService._normalise_parameters / _normalise_response are `pass` in moto 5.2). A real definition
(`LaunchType`, `Cluster`, `TaskDefinition`...) then fails in moto with `States.Runtime: 'LaunchType'`, and the
poller reads `Tasks` from a response that says `tasks`.

`enable()` fills those two methods in this process (the tests' ThreadedMotoServer runs in it) with the mapping
AWS does, from botocore's service model, through the helpers moto already has (_to_boto_request and
_from_boto_response). Nothing else of moto changes: RunTask records the task, the .sync poller waits for it to
stop, and the state sees the DescribeTasks description as in AWS.
"""

from __future__ import annotations

import functools

from botocore.session import get_session


@functools.cache
def _operation(service: str, action: str):
    model = get_session().get_service_model(service)
    name = "".join(part.title() for part in action.split("_"))  # run_task -> RunTask
    return model.operation_model(name)


def enable() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        operation = _operation(self._get_boto_service_name(boto_service_name),
                               self._get_boto_service_action(service_action_name))
        if operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        operation = _operation(self._get_boto_service_name(boto_service_name),
                               self._get_boto_service_action(service_action_name))
        if operation.output_shape is not None and isinstance(response, dict):
            self._from_boto_response(response, operation.output_shape)

    StateTaskServiceEcs._normalise_parameters = normalise_parameters
    StateTaskServiceEcs._normalise_response = normalise_response

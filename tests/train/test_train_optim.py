import onebit.models
from onebit.train.optim import binary_layer_types, param_groups


def test_param_groups_no_weight_decay_on_binary_latent_weights():
    model = onebit.models.create("mnist-small")
    groups = param_groups(model, weight_decay=5e-4)
    latent = {id(m.weight) for m in model.modules() if isinstance(m, binary_layer_types())}
    assert latent
    for g in groups:
        ids = {id(p) for p in g["params"]}
        if ids & latent:
            assert g["weight_decay"] == 0.0 and ids <= latent
    # every trainable parameter in exactly one group
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in model.parameters() if p.requires_grad)

"""Docstring pieces shared by the regressors and the classifiers."""

COMMON_PARAMS_DOC = """
    kernel_size : int or tuple of int, default=3
        Kernel extent per spatial mode (an int applies to every mode).
    stride : int or tuple of int, default=1
        Convolution stride per spatial mode.
    padding : {'valid', 'same'}, int or tuple of int, default='valid'
        Zero padding: none; enough for ``ceil(d_j / stride_j)`` outputs (TensorFlow's
        rule); or that many zeros on both sides of each spatial mode.
    pool_size : int or tuple of int, default=2
        Average-pooling window per spatial mode.  Convolution outputs that do not
        fill a whole window are dropped (floor mode).
    pool_stride : int or tuple of int, default=None
        Pooling stride; ``None`` means ``pool_size`` (non-overlapping windows).
    channel_axis : {1, -1} or None, default=None
        Axis of ``X`` that indexes input channels: ``1`` for ``(n, C, d_1, ...)``,
        ``-1`` for ``(n, d_1, ..., C)``, ``None`` for samples without channels.
        Declared, never guessed from shapes; kernels span all channels.
    sample_shape : int or tuple of int, default=None
        Shape of one sample (channel axis included, where ``channel_axis`` says)
        when ``X`` comes flattened as ``(n_samples, prod(sample_shape))``, e.g.
        after a transformer that only handles 2-d data.  ``None``: ``X`` has its
        samples' shape (a 2-d ``X`` is then a batch of 1-d signals).
    activation : {'identity', 'relu', 'leaky_relu', 'tanh', 'sigmoid', \
'softplus', 'squared_relu'}, default='identity'
        Activation between convolution and pooling (``'leaky_relu'``: slope
        0.01 below zero).  With the identity the network
        is linear: it is fitted on the conv-pool features ``Z`` (see
        :mod:`sktensorcnn.features`), and ``coef_`` / ``weight_`` exist.  With any
        other it is trained through numba forward/backward kernels.
    solver : {'auto', 'als', 'lbfgs', 'gd', 'adam', 'pgd', 'lrd'}, default='auto'
        ``'als'``: alternating least squares over the factors, each block an exact
        ridge solve, so the objective never increases (identity activation and
        squared loss: regressors only).
        ``'lbfgs'``: scipy's L-BFGS-B on all factors with analytic gradients
        (full batch).  ``'gd'``: full-batch gradient descent with momentum, as in
        the papers' experiments.  ``'adam'``: mini-batch Adam.
        ``'pgd'``: projected gradient descent ([Compact nets]) onto ``constraint``,
        backtracking step; with the identity activation and the estimator's own
        structure it runs on the composite weight ``W`` of the conv-pool features
        (truncated SVD / HOSVD / CP-ALS after each step), otherwise on the stacked
        kernels of the network, the FC layer unconstrained.
        ``'lrd'``: Tucker estimators only, [Rank reduction]'s low-rank update with rank
        reduction: a full gradient step, compression to the smallest Tucker ranks
        keeping ``energy`` (``ranks`` are the caps), a step on the factors; the
        ranks it settles on are ``ranks_``, their history ``rank_history_``.
        ``'auto'`` picks ``'als'`` for the identity activation with the squared
        loss (regressors), ``'pgd'`` for the kernel-entry constraints
        (``'sparse'``, ``'l1'``, ``'nuclear'``) and ``'lbfgs'`` otherwise
        (classifiers, other activations).  With the identity activation, ``'als'``
        and ``'lbfgs'`` run on the conv-pool features; ``'gd'`` and ``'adam'``
        always run the network.
    alpha : float or 'auto', default='auto'
        Ridge penalty, never on the intercept.  Identity activation fitted on
        the features: on the composite weight, the objective being
        ``mean_i s_i loss_i + alpha/2 * ||W||_F^2`` (weights ``s`` normalized to
        mean 1; regressors' loss ``1/2 (y_i - y_hat_i)^2``), as in scikit-learn's
        ``ElasticNet`` scaling.  Network fits (other activations, and ``'gd'`` /
        ``'adam'``): on the squared norms of the kernel factors and FC weights,
        with the inputs and targets scaled as :attr:`loss_curve_` says.
        ``'auto'`` adapts to the data: for the linear squared-loss fit, the
        penalty that minimizes generalized cross-validation of the unconstrained
        ridge fit on the conv-pool features (computed from the sufficient
        statistics; how ``RidgeCV`` chooses, without refits); otherwise
        ``1 / n_samples``, which is ``LogisticRegression``'s default ``C=1``
        written per sample, and, on the scaled data of the network fits, a unit
        Gaussian prior on every weight.  Classifiers need some penalty (separable
        classes leave the logistic loss without a minimizer), and networks on
        a few hundred collinear samples overfit without one.  The value used is
        ``alpha_``.
    fit_intercept : bool, default=True
        Whether to fit the bias of the fully-connected layer.
    max_iter : int or 'auto', default='auto'
        Maximum ALS sweeps, L-BFGS iterations, epochs or PGD steps.  ``'auto'``:
        1000 L-BFGS iterations for networks with a nonlinear activation (one or
        two passes over the data each; on real data their loss keeps falling
        well past 200), 200 otherwise.
    tol : float, default=1e-6
        Stop when an iteration lowers the objective by less than
        ``tol * max(|objective|, u)``, ``u`` the problem's unit: for the squared
        loss twice the loss of predicting the mean (the targets' weighted
        variance, 1 on the standardized targets of the network fits), for the
        Poisson loss the mean count, 1 for the Huber and classification losses.
        A fit therefore stops at the same iterate whatever the targets' units.
    n_init : int or 'auto', default='auto'
        Number of starts; the fit with the lowest objective is kept (low-rank fits
        are non-convex and a single start can end in a spurious local minimum).
        The first start is the unconstrained ridge fit truncated to the ranks
        (truncated HOSVD / SVD / CP-ALS; for classifiers, the least squares fit
        of the class indicators) when ``min(n_samples, L * P)`` is at most 4096
        (from the ``L P`` Gram matrix or the ``n x n`` kernel matrix, whichever
        is smaller; otherwise a ``UserWarning`` says that the fit starts at
        random); the others are random.  The squared-loss linear fits rescale
        each start to the multiple of its weight that fits best, so no start is
        worse than predicting the mean.  ``'auto'``: 4 when the fit runs on the
        sufficient statistics ``Z^T Z`` (a start then costs nothing in ``n``),
        else 1; always 1
        for dense kernels, whose rank-K matrix problem the spectral start solves
        reliably, for classifiers and for activations other than the identity.
    init : {'auto', 'spectral', 'random'}, default='auto'
        First start.  ``'spectral'``: identity activation, the unconstrained ridge
        fit truncated to the ranks; other activations, the fitted linear network
        (plus 1% noise to break symmetry).  ``'random'``: random factors, scaled
        to the kernels' fan-in (He scaling for the ReLU family).  ``'auto'``:
        ``'spectral'`` where the features allow its least squares fit (at most
        4,096 features ``L * P``, or for the squared loss at most 4,096
        samples), else ``'random'``; ``'spectral'`` asked for where they do not
        falls back to ``'random'`` with a warning.  Further starts (``n_init``)
        are random.
    batch_size : int or 'auto', default='auto'
        Samples per Adam step; ``'auto'`` is ``min(200, n_samples)``.
    shuffle : bool, default=True
        Reshuffle the samples each epoch (Adam).
    learning_rate_init : float or 'auto', default='auto'
        Step size of ``'gd'`` and ``'adam'``; ``'auto'`` is 0.01 for ``'gd'`` (the
        papers' setting) and 0.001 for ``'adam'`` (``MLPRegressor``'s).
    momentum : float, default=0.9
        Heavy-ball momentum of ``'gd'``.
    early_stopping : bool, default=False
        ``'gd'`` / ``'adam'``: hold out ``validation_fraction`` of the samples
        (stratified for classifiers), stop when their score (R^2, or accuracy for
        classifiers) has not improved by ``tol`` for ``n_iter_no_change`` epochs,
        and keep the best weights seen.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Without early stopping, ``'gd'`` / ``'adam'`` stop when the training loss
        has not improved by ``tol`` for this many epochs (``MLPRegressor``'s rule;
        1 gives the papers' rule).
    random_state : int, RandomState instance or None, default=None
        Seeds the random starts, the CP-ALS initialization, shuffling and the
        validation split.
    verbose : int, default=0
        Print the objective after each iteration when positive.  With
        scikit-learn 1.9 or later, ``set_callbacks`` takes its callbacks
        instead (``sklearn.callback.ProgressBar``, ``ScoringMonitor``): a task
        per solver run, a leaf per iteration, the model at each iteration.
    warm_start : bool, default=False
        Start from the previous fit's factors (a single start) when their shapes
        still fit.
    constraint : {'rank', 'tucker', 'cp', 'sparse', 'l1', 'nuclear'} or None, \
default=None
        Constraint set of ``solver='pgd'`` ([Compact nets]).  ``None``: the estimator's
        own kernel structure (``'rank'``: ``W`` of rank ``<= n_kernels`` for dense
        kernels; ``'tucker'``; ``'cp'``).  Dense estimators also take constraints
        on the kernel entries: ``'sparse'`` (at most ``sparsity`` nonzero entries
        over all kernels, hard thresholding), ``'l1'`` (l1 ball of radius
        ``radius``), ``'nuclear'`` (nuclear-norm ball of the ``L x K`` kernel
        matrix: kernels near a low-dimensional subspace).  With the two norm balls
        each kernel's FC weights are held at unit norm, as [Compact nets] fixes the
        output layer: otherwise the FC layer would absorb the kernels' scale.
    sparsity : int or None, default=None
        Nonzero kernel entries for ``constraint='sparse'``; ``None`` means 10% of
        them ([Compact nets]'s ``s = p / 10``).
    radius : float or None, default=None
        Radius of the ``'l1'`` / ``'nuclear'`` ball; ``None`` means the norm of the
        starting kernels (the fitted linear network's, FC weights normalized), so
        that training cannot grow them.
    device : {'cpu', 'cuda', 'auto'}, default='cpu'
        Where the kernels run.  ``'cuda'``: on an NVIDIA GPU through numba.cuda
        (optional extra ``cuda``); without one ``fit`` raises a ``ValueError``
        saying so.  ``'auto'``: the GPU when numba sees one, else the CPU.  On the
        GPU the samples are copied there once per fit and stay for all its
        iterations; the results equal the CPU's to rounding.  ``device_`` records
        where the fit ran; ``predict`` runs where ``device`` says at that time, so
        a model fitted on a GPU predicts on a CPU-only machine with
        ``set_params(device='cpu')`` or ``'auto'``.
    n_jobs : int or None, default=None
        Threads of the numba kernels during ``fit``, ``predict`` and the other
        methods: ``None`` means numba's thread count (``NUMBA_NUM_THREADS``,
        which joblib's process workers lower to avoid oversubscription), ``-1``
        all of them, a positive number at most that many.  BLAS threads are
        limited alike.
"""

COMMON_ATTRS_DOC = """
    geometry_ : ConvPoolGeometry
        Validated shapes of the layer (conv and pooled sizes, ...).
    input_shape_ : tuple of int
        Shape of one sample seen in ``fit``; ``predict`` requires it.
    n_features_in_ : int
        Number of input values per sample, ``prod(input_shape_)``.
    n_iter_ : int
        Iterations run by the solver.
    loss_curve_ : list of float
        Objective after each iteration (epoch, for ``'gd'`` / ``'adam'``).  The
        network fits (activations other than the identity, ``'gd'``, ``'adam'``)
        run on the inputs divided by their root mean square and, for regressors,
        on standardized targets, so that ``alpha``, the learning rates and the
        tolerances mean the same in any units: their objective is on that scale,
        where predicting the mean costs ``0.5``.  Fitted attributes and
        predictions are in the data's own units.
    alpha_ : float
        The ridge penalty used (``alpha``, resolved when ``'auto'``).
    best_loss_ : float or None
        ``'gd'`` / ``'adam'`` without early stopping: the lowest epoch loss;
        None otherwise.
    validation_scores_ : list of float or None
        ``'gd'`` / ``'adam'`` with early stopping: validation score per epoch (R^2, or
        accuracy for classifiers); None otherwise.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; its weights are the fitted ones.
        None without early stopping.
    n_params_ : int
        Stored weights of the fitted network (kernels or their factors, FC weights,
        intercept).
    n_kernels_ : int
        Number of kernels ``K`` of the fitted network.
    device_ : {'cpu', 'cuda'}
        Where the fit ran.
    constraint_ : str
        The kernel constraint in force: the structure's (``'rank'``, ``'tucker'``,
        ``'cp'``) or the ``constraint`` of a ``'pgd'`` fit.
    covering_dimension_ : float
        Covering dimension of that constraint at the fitted kernels ([Compact nets],
        Table 1): ``K L`` for ``K`` dense kernels of ``L`` entries, ``s log(6 K L
        / s)`` for ``s`` nonzero entries, ``r (L + K - r)`` for a rank-``r`` kernel
        matrix, the dimension of the Tucker / CP set otherwise.  PGD needs a
        number of samples proportional to it.
    model_complexity_ : int
        ``d_M`` of [Compressed CNNs] (Theorems 1-2; with ``M`` classes ``P`` becomes
        ``M P``, App. A.4): the dimension that sets the estimation error,
        ``||W_hat - W|| ~ sqrt(d_M / n)``.
"""





def append_common_docs(cls, attrs_doc: str, params_doc: str = "",
                       examples_doc: str = "") -> None:
    """Append the shared parameters, ``params_doc``, the attributes and the
    ``Examples`` section to a class docstring."""
    cls.__doc__ = (
        cls.__doc__.rstrip()
        + "\n"
        + COMMON_PARAMS_DOC.rstrip()
        + "\n"
        + params_doc
        + "\n    Attributes\n    ----------"
        + attrs_doc
        + ("\n    Examples\n    --------" + examples_doc if examples_doc else "")
    )
